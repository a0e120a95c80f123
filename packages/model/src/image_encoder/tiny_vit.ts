import { Conv2d, LayerNorm2d, Module, ModuleList, nn, tf } from '@mcp-medsam/core';
import type { TinyViTConfig } from '../config.js';
import { EMBEDDING_SIZE } from '../config.js';
import { Conv2dBN } from './conv2d_bn.js';
import { MBConv } from './mbconv.js';
import { PatchMerging } from './patch_merging.js';
import { TinyViTBlock } from './tiny_vit_block.js';

/** TinyViT's PatchEmbed here: two 1x1 Conv2d_BN with GELU between — no downsampling (spec §2.2). */
export class PatchEmbed extends Module {
  readonly seq0: Conv2dBN;
  readonly seq2: Conv2dBN;
  constructor(inChans: number, embedDim: number) {
    super();
    const seq = this.child('seq', new Module());
    this.seq0 = new Conv2dBN(inChans, embedDim / 2, 1);
    this.seq2 = new Conv2dBN(embedDim / 2, embedDim, 1);
    registerChild(seq, '0', this.seq0);
    registerChild(seq, '2', this.seq2);
  }
  forward(x: tf.Tensor): tf.Tensor {
    // Checkpointed (in training): at 256x256 its activations would stay on the tape otherwise.
    return nn.checkpoint(this, x, (t) => tf.tidy(() => this.seq2.forward(nn.gelu(this.seq0.forward(t)))));
  }
}

/** Registers a child on a plain container Module (used for `seq.0` / `seq.2` style names). */
function registerChild(parent: Module, name: string, child: Module): void {
  (parent as unknown as { child(n: string, m: Module): Module }).child(name, child);
}

/** Stage 0: MBConv blocks on a full-resolution map, then a PatchMerging to tokens. */
export class ConvLayer extends Module {
  readonly blocks: ModuleList<MBConv>;
  readonly downsample: PatchMerging;
  constructor(dim: number, depth: number, expandRatio: number, downsample: PatchMerging) {
    super();
    this.blocks = this.child(
      'blocks',
      new ModuleList(Array.from({ length: depth }, () => new MBConv(dim, expandRatio))),
    );
    this.downsample = this.child('downsample', downsample);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      // MBConv and PatchMerging checkpoint their conv units themselves.
      let y = x;
      for (const b of this.blocks.items) y = b.forward(y);
      return this.downsample.forward(y);
    });
  }
}

/** Stages 1-3: TinyViT blocks on tokens, then an optional PatchMerging. */
export class BasicLayer extends Module {
  readonly blocks: ModuleList<TinyViTBlock>;
  readonly downsample?: PatchMerging;
  constructor(blocks: TinyViTBlock[], downsample?: PatchMerging) {
    super();
    this.blocks = this.child('blocks', new ModuleList(blocks));
    if (downsample) this.downsample = this.child('downsample', downsample);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let y = x;
      for (const b of this.blocks.items) y = nn.checkpoint(b, y, (t) => b.forward(t));
      return this.downsample ? this.downsample.forward(y) : y;
    });
  }
}

/** Intermediate outputs of the encoder, for parity checks against the original's hooks. */
export interface EncoderTaps {
  patch_embed?: tf.Tensor;
  layers_0?: tf.Tensor;
  layers_1?: tf.Tensor;
  layers_2?: tf.Tensor;
  layers_3?: tf.Tensor;
}

/**
 * The MCP-MedSAM image encoder (`image_encoder.*`): a TinyViT variant on 256x256 inputs giving a
 * (B, 64, 64, embedDim) embedding (NHWC). See spec §2.
 */
export class TinyViT extends Module {
  readonly patch_embed: PatchEmbed;
  readonly layers: ModuleList<ConvLayer | BasicLayer>;
  readonly neck: Module;
  private readonly neck0: Conv2d;
  private readonly neck1: LayerNorm2d;
  private readonly neck2: Conv2d;
  private readonly neck3: LayerNorm2d;

  constructor(
    readonly config: TinyViTConfig,
    readonly outDim: number,
    readonly imageSize = 256,
  ) {
    super();
    const {
      embedDims: d,
      depths,
      numHeads,
      windowSizes,
      mlpRatio,
      mbconvExpandRatio,
      localConvSize,
    } = config;
    this.patch_embed = this.child('patch_embed', new PatchEmbed(3, d[0]));
    const stages: (ConvLayer | BasicLayer)[] = [];
    const last = d.length - 1;
    for (let i = 0; i < d.length; i++) {
      // The patch embedding keeps full resolution; stages 0-2 halve it except the last merge,
      // which has stride 1 (in the original: out_dim in {320, 448, 576}).
      const res = imageSize / 2 ** Math.min(i, 2);
      const down = i < last ? new PatchMerging(res, d[i], d[i + 1], i + 1 === last ? 1 : 2) : undefined;
      if (i === 0) stages.push(new ConvLayer(d[0], depths[0], mbconvExpandRatio, down!));
      else {
        const blocks = Array.from(
          { length: depths[i] },
          () => new TinyViTBlock(d[i], res, numHeads[i], windowSizes[i], mlpRatio, localConvSize),
        );
        stages.push(new BasicLayer(blocks, down));
      }
    }
    this.layers = this.child('layers', new ModuleList(stages));
    this.neck = this.child('neck', new Module());
    this.neck0 = new Conv2d(d[last], outDim, 1, { bias: false });
    this.neck1 = new LayerNorm2d(outDim);
    this.neck2 = new Conv2d(outDim, outDim, 3, { padding: 1, bias: false });
    this.neck3 = new LayerNorm2d(outDim);
    registerChild(this.neck, '0', this.neck0);
    registerChild(this.neck, '1', this.neck1);
    registerChild(this.neck, '2', this.neck2);
    registerChild(this.neck, '3', this.neck3);
  }

  /**
   * image: (B, 3, 256, 256) NCHW, normalised and padded. Returns the embedding (B, 64, 64, C) NHWC.
   * With `taps`, the stage outputs are kept there (the caller disposes them).
   */
  forward(image: tf.Tensor, taps?: EncoderTaps): tf.Tensor {
    return tf.tidy(() => {
      const b = image.shape[0];
      let x = this.patch_embed.forward(tf.transpose(image, [0, 2, 3, 1]));
      // Taps hold their own references (clones share the data), so callers may dispose them.
      if (taps) taps.patch_embed = tf.keep(tf.clone(x));
      this.layers.items.forEach((layer, i) => {
        x = layer.forward(x);
        if (taps) (taps as Record<string, tf.Tensor>)[`layers_${i}`] = tf.keep(tf.clone(x));
      });
      const c = x.shape[2] as number;
      let y = tf.reshape(x, [b, EMBEDDING_SIZE, EMBEDDING_SIZE, c]);
      y = this.neck1.forward(this.neck0.forward(y));
      return this.neck3.forward(this.neck2.forward(y));
    });
  }
}
