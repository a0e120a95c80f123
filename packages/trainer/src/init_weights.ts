/**
 * Initial weights of a run: a full MCP-MedSAM checkpoint (strict), a bare TinyViT state dict
 * (into the encoder, as the original starts from LiteMedSAM's TinyViT), a run checkpoint's model,
 * or any other SAM-family checkpoint such as LiteMedSAM, of which the keys with the same name
 * and shape are taken.
 */
import { InputError } from '@mcp-medsam/core';
import type { NdArray } from '@mcp-medsam/io';
import { isBareTinyViT, loadStateDict, readCheckpointFile, type McpMedsam } from '@mcp-medsam/model';

export interface InitReport {
  kind: 'full' | 'image_encoder' | 'partial';
  /** Keys taken from the file. */
  loaded: number;
  /** Model keys left at their initial values (partial loads). */
  missing: string[];
  /** File keys not used (absent from the model or of another shape). */
  skipped: string[];
}

export async function initWeights(model: McpMedsam, file: string): Promise<InitReport> {
  const ck = await readCheckpointFile(file);
  let sd = ck.stateDict;
  if (typeof ck.meta.mcp_medsam_run === 'string') {
    sd = new Map([...sd].filter(([k]) => k.startsWith('model.')).map(([k, v]) => [k.slice(6), v]));
  }
  const own = model.stateDict();
  const exact = sd.size === own.size && [...sd.keys()].every((k) => own.has(k));
  if (exact || isBareTinyViT(sd.keys())) {
    const r = loadStateDict(model, sd, { strict: true, file });
    return { kind: r.kind, loaded: sd.size, missing: [], skipped: [] };
  }
  const take = new Map<string, NdArray>();
  const skipped: string[] = [];
  for (const [k, a] of sd) {
    const t = own.get(k);
    if (t && t.shape.length === a.shape.length && t.shape.every((d, i) => d === a.shape[i])) take.set(k, a);
    else skipped.push(k);
  }
  if (take.size === 0)
    throw new InputError(`no tensor of this checkpoint fits the model (${sd.size} keys, none shared)`, {
      file,
    });
  loadStateDict(model, take, { strict: false, file });
  return {
    kind: 'partial',
    loaded: take.size,
    missing: [...own.keys()].filter((k) => !take.has(k)),
    skipped,
  };
}
