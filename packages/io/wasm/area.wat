(module
  ;; The general shrink of cv2.resize(INTER_AREA) for uint8 images with 1 or 3 channels
  ;; (areaGeneral in src/resize/inter_area.ts, which drives these row by row): OpenCV's float32
  ;; arithmetic, each product and each sum rounded to float32 in the same order as the JS code,
  ;; so the bits are the same (f32 ops round exactly as the JS `fround` of the float64 op).
  ;; It exists because resizing is most of the cost of preparing a slice for training.
  ;;
  ;; The module owns its memory (grown by the caller); pointers are byte offsets into it.
  (memory (export "memory") 1)

  ;; Horizontal pass of one RGB source row at $src: buf[3d + k] = sum over the table entries
  ;; e of output column d (start[d] .. start[d+1]-1) of src[3*xsi[e] + k] * xal[e], float32, in
  ;; table order. The three channels ride in lanes 0-2 of one f32x4 (lane 3 reads the next
  ;; byte and is overwritten by the next column; the caller pads the row and buf by 4).
  (func (export "hrow3") (param $src i32) (param $outW i32) (param $start i32) (param $xsi i32)
    (param $xal i32) (param $buf i32)
    (local $e i32) (local $end i32) (local $acc v128) (local $v v128)
    (local.set $e (i32.load (local.get $start)))
    (block $done (loop $d
      (br_if $done (i32.le_s (local.get $outW) (i32.const 0)))
      (local.set $start (i32.add (local.get $start) (i32.const 4)))
      (local.set $end (i32.load (local.get $start)))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (block $tdone (loop $tap
        (br_if $tdone (i32.ge_s (local.get $e) (local.get $end)))
        (local.set $v (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u
          (v128.load32_zero (i32.add (local.get $src)
            (i32.mul (i32.load (i32.add (local.get $xsi) (i32.shl (local.get $e) (i32.const 2)))) (i32.const 3))))))))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v)
          (f32x4.splat (f32.load (i32.add (local.get $xal) (i32.shl (local.get $e) (i32.const 2))))))))
        (local.set $e (i32.add (local.get $e) (i32.const 1)))
        (br $tap)))
      (v128.store (local.get $buf) (local.get $acc))
      (local.set $buf (i32.add (local.get $buf) (i32.const 12)))
      (local.set $outW (i32.sub (local.get $outW) (i32.const 1)))
      (br $d))))

  ;; The same for a grey row (scalar).
  (func (export "hrow1") (param $src i32) (param $outW i32) (param $start i32) (param $xsi i32)
    (param $xal i32) (param $buf i32)
    (local $e i32) (local $end i32) (local $acc f32)
    (local.set $e (i32.load (local.get $start)))
    (block $done (loop $d
      (br_if $done (i32.le_s (local.get $outW) (i32.const 0)))
      (local.set $start (i32.add (local.get $start) (i32.const 4)))
      (local.set $end (i32.load (local.get $start)))
      (local.set $acc (f32.const 0))
      (block $tdone (loop $tap
        (br_if $tdone (i32.ge_s (local.get $e) (local.get $end)))
        (local.set $acc (f32.add (local.get $acc) (f32.mul
          (f32.convert_i32_u (i32.load8_u (i32.add (local.get $src)
            (i32.load (i32.add (local.get $xsi) (i32.shl (local.get $e) (i32.const 2)))))))
          (f32.load (i32.add (local.get $xal) (i32.shl (local.get $e) (i32.const 2)))))))
        (local.set $e (i32.add (local.get $e) (i32.const 1)))
        (br $tap)))
      (f32.store (local.get $buf) (local.get $acc))
      (local.set $buf (i32.add (local.get $buf) (i32.const 4)))
      (local.set $outW (i32.sub (local.get $outW) (i32.const 1)))
      (br $d))))

  ;; Vertical pass over $n floats (rounded up to whole vectors; buf and sum are padded):
  ;; sum = beta * buf when $first, else sum = sum + beta * buf.
  (func (export "vrow") (param $buf i32) (param $sum i32) (param $beta f32) (param $n i32) (param $first i32)
    (local $b v128) (local $end i32) (local $p v128)
    (local.set $b (f32x4.splat (local.get $beta)))
    (local.set $end (i32.add (local.get $sum) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $x
      (br_if $done (i32.ge_u (local.get $sum) (local.get $end)))
      (local.set $p (f32x4.mul (local.get $b) (v128.load (local.get $buf))))
      (if (i32.eqz (local.get $first))
        (then (local.set $p (f32x4.add (v128.load (local.get $sum)) (local.get $p)))))
      (v128.store (local.get $sum) (local.get $p))
      (local.set $buf (i32.add (local.get $buf) (i32.const 16)))
      (local.set $sum (i32.add (local.get $sum) (i32.const 16)))
      (br $x))))

  ;; One output row: dst[x] = saturate_u8(round_half_even(sum[x])) for $n values (exactly $n
  ;; bytes are written).
  (func (export "vstore") (param $sum i32) (param $dst i32) (param $n i32)
    (local $end i32) (local $v v128) (local $i i32)
    (local.set $end (i32.add (local.get $dst) (i32.and (local.get $n) (i32.const -4))))
    (block $done (loop $x
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (local.set $v (i32x4.trunc_sat_f32x4_s (f32x4.nearest (v128.load (local.get $sum)))))
      (local.set $v (i32x4.min_s (i32x4.max_s (local.get $v) (v128.const i32x4 0 0 0 0))
        (v128.const i32x4 255 255 255 255)))
      (v128.store32_lane 0 (local.get $dst)
        (i8x16.narrow_i16x8_u (i16x8.narrow_i32x4_u (local.get $v) (local.get $v))
          (i16x8.narrow_i32x4_u (local.get $v) (local.get $v))))
      (local.set $sum (i32.add (local.get $sum) (i32.const 16)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
      (br $x)))
    (local.set $end (i32.add (local.get $end) (i32.and (local.get $n) (i32.const 3))))
    (block $tdone (loop $t
      (br_if $tdone (i32.ge_u (local.get $dst) (local.get $end)))
      (local.set $i (i32.trunc_sat_f32_s (f32.nearest (f32.load (local.get $sum)))))
      (i32.store8 (local.get $dst)
        (select (i32.const 0)
          (select (i32.const 255) (local.get $i) (i32.gt_s (local.get $i) (i32.const 255)))
          (i32.lt_s (local.get $i) (i32.const 0))))
      (local.set $sum (i32.add (local.get $sum) (i32.const 4)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
      (br $t))))
)
