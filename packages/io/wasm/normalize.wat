(module
  ;; The per-sample half of the training image pre-processing (padNormalized in
  ;; src/preprocess/inference.ts): a 256-entry float32 table applied to one row of resized uint8
  ;; content, written into the three float32 planes of the padded frame. Pure table look-ups and
  ;; copies, so the output bits are the JS path's; it exists because V8's bounds checks and
  ;; float32 <-> float64 conversions make the JS loop about twice as slow.
  ;;
  ;; The module owns its memory (grown by the caller); pointers are byte offsets into it.
  (memory (export "memory") 1)

  ;; Zero $bytes at $at in each of the three planes: the padding columns of an output row (the
  ;; caller zeroes whole padding rows itself), so no pass clears the frame first.
  (func $zero3 (param $at i32) (param $bytes i32) (param $plane i32)
    (memory.fill (local.get $at) (i32.const 0) (local.get $bytes))
    (memory.fill (i32.add (local.get $at) (local.get $plane)) (i32.const 0) (local.get $bytes))
    (memory.fill (i32.add (local.get $at) (i32.shl (local.get $plane) (i32.const 1))) (i32.const 0) (local.get $bytes)))

  ;; $n pixels of 3 channels at $src -> plane k at $dst + k*$plane, advancing $dx bytes per pixel
  ;; (-4 for a horizontal flip); the row's padding columns ($padBytes at $pad in plane 0) are zeroed.
  (func (export "row3") (param $src i32) (param $n i32) (param $lut i32) (param $dst i32) (param $dx i32) (param $plane i32)
    (param $pad i32) (param $padBytes i32)
    (local $end i32) (local $d1 i32) (local $d2 i32)
    (local.set $end (i32.add (local.get $src) (i32.mul (local.get $n) (i32.const 3))))
    (call $zero3 (local.get $pad) (local.get $padBytes) (local.get $plane))
    (local.set $d1 (i32.add (local.get $dst) (local.get $plane)))
    (local.set $d2 (i32.add (local.get $d1) (local.get $plane)))
    (block $done (loop $x
      (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
      (f32.store (local.get $dst)
        (f32.load (i32.add (local.get $lut) (i32.shl (i32.load8_u offset=0 (local.get $src)) (i32.const 2)))))
      (f32.store (local.get $d1)
        (f32.load (i32.add (local.get $lut) (i32.shl (i32.load8_u offset=1 (local.get $src)) (i32.const 2)))))
      (f32.store (local.get $d2)
        (f32.load (i32.add (local.get $lut) (i32.shl (i32.load8_u offset=2 (local.get $src)) (i32.const 2)))))
      (local.set $src (i32.add (local.get $src) (i32.const 3)))
      (local.set $dst (i32.add (local.get $dst) (local.get $dx)))
      (local.set $d1 (i32.add (local.get $d1) (local.get $dx)))
      (local.set $d2 (i32.add (local.get $d2) (local.get $dx)))
      (br $x))))

  ;; The same for grey content: one channel repeated into the three planes.
  (func (export "row1") (param $src i32) (param $n i32) (param $lut i32) (param $dst i32) (param $dx i32) (param $plane i32)
    (param $pad i32) (param $padBytes i32)
    (local $end i32) (local $d1 i32) (local $d2 i32) (local $v f32)
    (local.set $end (i32.add (local.get $src) (local.get $n)))
    (call $zero3 (local.get $pad) (local.get $padBytes) (local.get $plane))
    (local.set $d1 (i32.add (local.get $dst) (local.get $plane)))
    (local.set $d2 (i32.add (local.get $d1) (local.get $plane)))
    (block $done (loop $x
      (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
      (local.set $v
        (f32.load (i32.add (local.get $lut) (i32.shl (i32.load8_u (local.get $src)) (i32.const 2)))))
      (f32.store (local.get $dst) (local.get $v))
      (f32.store (local.get $d1) (local.get $v))
      (f32.store (local.get $d2) (local.get $v))
      (local.set $src (i32.add (local.get $src) (i32.const 1)))
      (local.set $dst (i32.add (local.get $dst) (local.get $dx)))
      (local.set $d1 (i32.add (local.get $d1) (local.get $dx)))
      (local.set $d2 (i32.add (local.get $d2) (local.get $dx)))
      (br $x))))
)
