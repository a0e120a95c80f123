(module
  (import "env" "memory" (memory 1))
  ;; Training-mode batch normalisation over the rows of an (R, C) float32 map (NHWC flattened:
  ;; channels last), forward and backward, with per-channel sums accumulated in float64 (`acc`:
  ;; 2*C doubles of scratch), so the statistics are exact to float32 rounding however many rows
  ;; there are. Channels in SIMD lanes, 4 at a time (two f64x2 accumulators per 4 channels), a
  ;; scalar tail for C % 4. Byte pointers; offsets are i32 and wrap modulo 2^32 (the heap may
  ;; pass 2 GiB).

  ;; acc[0..C) += x[r, c] over all rows (float64), acc[C..2C) += (x[r, c] - mean64[c])^2 when
  ;; $centred (mean64 read from acc2[0..C) doubles).
  (func $sum_rows (param $x i32) (param $rows i32) (param $C i32) (param $acc i32) (param $mean i32) (param $centred i32)
    (local $r i32) (local $c i32) (local $C4 i32) (local $row i32) (local $a i32) (local $m i32)
    (local $v v128) (local $lo v128) (local $hi v128) (local $s f64)
    (local.set $C4 (i32.and (local.get $C) (i32.const -4)))
    (local.set $row (local.get $x))
    (block $rdone (loop $rloop
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $cdone (loop $cloop
        (br_if $cdone (i32.ge_u (local.get $c) (local.get $C4)))
        (local.set $v (v128.load (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $hi (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
        (if (local.get $centred)
          (then
            (local.set $m (i32.add (local.get $mean) (i32.shl (local.get $c) (i32.const 3))))
            (local.set $lo (f64x2.sub (local.get $lo) (v128.load (local.get $m))))
            (local.set $hi (f64x2.sub (local.get $hi) (v128.load offset=16 (local.get $m))))
            (local.set $lo (f64x2.mul (local.get $lo) (local.get $lo)))
            (local.set $hi (f64x2.mul (local.get $hi) (local.get $hi)))))
        (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (local.get $lo)))
        (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a)) (local.get $hi)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $cloop)))
      (block $tdone (loop $tloop
        (br_if $tdone (i32.ge_u (local.get $c) (local.get $C)))
        (local.set $s (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2))))))
        (if (local.get $centred)
          (then
            (local.set $s (f64.sub (local.get $s) (f64.load (i32.add (local.get $mean) (i32.shl (local.get $c) (i32.const 3))))))
            (local.set $s (f64.mul (local.get $s) (local.get $s)))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
        (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (local.get $s)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $tloop)))
      (local.set $row (i32.add (local.get $row) (i32.shl (local.get $C) (i32.const 2))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rloop)))
  )

  ;; Forward. stats (f32, 3*C): mean, biased variance, 1/sqrt(variance + eps), all from float64;
  ;; then xhat = (x - mean) * invStd and y = xhat * w + b in float32 (the tf-ops order).
  (func (export "bn_forward")
    (param $x i32) (param $rows i32) (param $C i32) (param $w i32) (param $b i32) (param $eps f64)
    (param $acc i32) (param $stats i32) (param $xhat i32) (param $y i32)
    (local $c i32) (local $r i32) (local $C4 i32) (local $n f64) (local $m f64) (local $v f64)
    (local $o i32) (local $end i32) (local $i i32) (local $cv i32)
    (local $mean v128) (local $inv v128) (local $wv v128) (local $bv v128) (local $h v128)
    (local.set $n (f64.convert_i32_u (local.get $rows)))
    ;; mean (float64 in acc[C..2C), float32 in stats[0..C))
    (memory.fill (local.get $acc) (i32.const 0) (i32.shl (local.get $C) (i32.const 4)))
    (call $sum_rows (local.get $x) (local.get $rows) (local.get $C) (local.get $acc) (i32.const 0) (i32.const 0))
    (local.set $c (i32.const 0))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $c) (local.get $C)))
      (local.set $m (f64.div (f64.load (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3)))) (local.get $n)))
      (f64.store (i32.add (local.get $acc) (i32.shl (i32.add (local.get $c) (local.get $C)) (i32.const 3))) (local.get $m))
      (f32.store (i32.add (local.get $stats) (i32.shl (local.get $c) (i32.const 2))) (f32.demote_f64 (local.get $m)))
      (f64.store (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))) (f64.const 0))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $l1)))
    ;; variance about the float64 mean, and 1/sqrt(variance + eps)
    (call $sum_rows (local.get $x) (local.get $rows) (local.get $C) (local.get $acc)
      (i32.add (local.get $acc) (i32.shl (local.get $C) (i32.const 3))) (i32.const 1))
    (local.set $c (i32.const 0))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $c) (local.get $C)))
      (local.set $v (f64.div (f64.load (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3)))) (local.get $n)))
      (f32.store (i32.add (local.get $stats) (i32.shl (i32.add (local.get $c) (local.get $C)) (i32.const 2)))
        (f32.demote_f64 (local.get $v)))
      (f32.store (i32.add (local.get $stats) (i32.shl (i32.add (local.get $c) (i32.shl (local.get $C) (i32.const 1))) (i32.const 2)))
        (f32.demote_f64 (f64.div (f64.const 1) (f64.sqrt (f64.add (local.get $v) (local.get $eps))))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $l2)))
    ;; xhat and y
    (local.set $C4 (i32.and (local.get $C) (i32.const -4)))
    (local.set $o (i32.const 0))
    (block $rdone (loop $rloop
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $cdone (loop $cloop
        (br_if $cdone (i32.ge_u (local.get $c) (local.get $C4)))
        (local.set $cv (i32.shl (local.get $c) (i32.const 2)))
        (local.set $i (i32.add (local.get $o) (local.get $cv)))
        (local.set $h (f32x4.mul
          (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (v128.load (i32.add (local.get $stats) (local.get $cv))))
          (v128.load (i32.add (i32.add (local.get $stats) (i32.shl (local.get $C) (i32.const 3))) (local.get $cv)))))
        (v128.store (i32.add (local.get $xhat) (local.get $i)) (local.get $h))
        (v128.store (i32.add (local.get $y) (local.get $i))
          (f32x4.add (f32x4.mul (local.get $h) (v128.load (i32.add (local.get $w) (local.get $cv))))
            (v128.load (i32.add (local.get $b) (local.get $cv)))))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $cloop)))
      (block $tdone (loop $tloop
        (br_if $tdone (i32.ge_u (local.get $c) (local.get $C)))
        (local.set $cv (i32.shl (local.get $c) (i32.const 2)))
        (local.set $i (i32.add (local.get $o) (local.get $cv)))
        (local.set $h (f32x4.splat (f32.mul
          (f32.sub (f32.load (i32.add (local.get $x) (local.get $i))) (f32.load (i32.add (local.get $stats) (local.get $cv))))
          (f32.load (i32.add (i32.add (local.get $stats) (i32.shl (local.get $C) (i32.const 3))) (local.get $cv))))))
        (f32.store (i32.add (local.get $xhat) (local.get $i)) (f32x4.extract_lane 0 (local.get $h)))
        (f32.store (i32.add (local.get $y) (local.get $i))
          (f32.add (f32.mul (f32x4.extract_lane 0 (local.get $h)) (f32.load (i32.add (local.get $w) (local.get $cv))))
            (f32.load (i32.add (local.get $b) (local.get $cv)))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $tloop)))
      (local.set $o (i32.add (local.get $o) (i32.shl (local.get $C) (i32.const 2))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rloop)))
  )

  ;; Backward. With k = gamma * invStd (f32, C): sums (f32, 2*C) = sum of dy and of dy * xhat
  ;; per channel (float64 sums: the weight and bias gradients), and
  ;;   dx = ((dy - mean(dy)) - xhat * mean(dy * xhat)) * k   (float32, the tf-ops order).
  ;; acc: 2*C doubles, then 2*C floats for the two means (24*C bytes).
  (func (export "bn_backward")
    (param $dy i32) (param $xh i32) (param $rows i32) (param $C i32) (param $k i32)
    (param $acc i32) (param $sums i32) (param $dx i32)
    (local $r i32) (local $c i32) (local $C4 i32) (local $o i32) (local $i i32) (local $cv i32)
    (local $a i32) (local $means i32) (local $n f64) (local $s1 f64) (local $s2 f64)
    (local $d v128) (local $h v128) (local $dlo v128) (local $dhi v128) (local $hlo v128) (local $hhi v128)
    (local.set $C4 (i32.and (local.get $C) (i32.const -4)))
    (local.set $n (f64.convert_i32_u (local.get $rows)))
    (local.set $means (i32.add (local.get $acc) (i32.shl (local.get $C) (i32.const 4))))
    (memory.fill (local.get $acc) (i32.const 0) (i32.shl (local.get $C) (i32.const 4)))
    ;; pass 1: acc[c] += dy, acc[C + c] += dy * xhat (float64)
    (block $rdone (loop $rloop
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $cdone (loop $cloop
        (br_if $cdone (i32.ge_u (local.get $c) (local.get $C4)))
        (local.set $i (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $d (v128.load (i32.add (local.get $dy) (local.get $i))))
        (local.set $h (v128.load (i32.add (local.get $xh) (local.get $i))))
        (local.set $dlo (f64x2.promote_low_f32x4 (local.get $d)))
        (local.set $dhi (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $d) (local.get $d))))
        (local.set $hlo (f64x2.promote_low_f32x4 (local.get $h)))
        (local.set $hhi (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $h) (local.get $h))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
        (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (local.get $dlo)))
        (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a)) (local.get $dhi)))
        (local.set $a (i32.add (local.get $a) (i32.shl (local.get $C) (i32.const 3))))
        (v128.store (local.get $a)
          (f64x2.add (v128.load (local.get $a)) (f64x2.mul (local.get $dlo) (local.get $hlo))))
        (v128.store offset=16 (local.get $a)
          (f64x2.add (v128.load offset=16 (local.get $a)) (f64x2.mul (local.get $dhi) (local.get $hhi))))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $cloop)))
      (block $tdone (loop $tloop
        (br_if $tdone (i32.ge_u (local.get $c) (local.get $C)))
        (local.set $i (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $s1 (f64.promote_f32 (f32.load (i32.add (local.get $dy) (local.get $i)))))
        (local.set $s2 (f64.promote_f32 (f32.load (i32.add (local.get $xh) (local.get $i)))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
        (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (local.get $s1)))
        (local.set $a (i32.add (local.get $a) (i32.shl (local.get $C) (i32.const 3))))
        (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.mul (local.get $s1) (local.get $s2))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $tloop)))
      (local.set $o (i32.add (local.get $o) (i32.shl (local.get $C) (i32.const 2))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rloop)))
    ;; the sums (outputs) and the means (float32, for pass 2)
    (local.set $c (i32.const 0))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $c) (local.get $C)))
      (local.set $s1 (f64.load (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3)))))
      (local.set $s2 (f64.load (i32.add (local.get $acc) (i32.shl (i32.add (local.get $c) (local.get $C)) (i32.const 3)))))
      (f32.store (i32.add (local.get $sums) (i32.shl (local.get $c) (i32.const 2))) (f32.demote_f64 (local.get $s1)))
      (f32.store (i32.add (local.get $sums) (i32.shl (i32.add (local.get $c) (local.get $C)) (i32.const 2)))
        (f32.demote_f64 (local.get $s2)))
      (f32.store (i32.add (local.get $means) (i32.shl (local.get $c) (i32.const 2)))
        (f32.demote_f64 (f64.div (local.get $s1) (local.get $n))))
      (f32.store (i32.add (local.get $means) (i32.shl (i32.add (local.get $c) (local.get $C)) (i32.const 2)))
        (f32.demote_f64 (f64.div (local.get $s2) (local.get $n))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $l1)))
    ;; pass 2: dx
    (local.set $r (i32.const 0))
    (local.set $o (i32.const 0))
    (block $r2done (loop $r2loop
      (br_if $r2done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $c2done (loop $c2loop
        (br_if $c2done (i32.ge_u (local.get $c) (local.get $C4)))
        (local.set $cv (i32.shl (local.get $c) (i32.const 2)))
        (local.set $i (i32.add (local.get $o) (local.get $cv)))
        (v128.store (i32.add (local.get $dx) (local.get $i))
          (f32x4.mul
            (f32x4.sub
              (f32x4.sub (v128.load (i32.add (local.get $dy) (local.get $i))) (v128.load (i32.add (local.get $means) (local.get $cv))))
              (f32x4.mul (v128.load (i32.add (local.get $xh) (local.get $i)))
                (v128.load (i32.add (i32.add (local.get $means) (i32.shl (local.get $C) (i32.const 2))) (local.get $cv)))))
            (v128.load (i32.add (local.get $k) (local.get $cv)))))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $c2loop)))
      (block $t2done (loop $t2loop
        (br_if $t2done (i32.ge_u (local.get $c) (local.get $C)))
        (local.set $cv (i32.shl (local.get $c) (i32.const 2)))
        (local.set $i (i32.add (local.get $o) (local.get $cv)))
        (f32.store (i32.add (local.get $dx) (local.get $i))
          (f32.mul
            (f32.sub
              (f32.sub (f32.load (i32.add (local.get $dy) (local.get $i))) (f32.load (i32.add (local.get $means) (local.get $cv))))
              (f32.mul (f32.load (i32.add (local.get $xh) (local.get $i)))
                (f32.load (i32.add (i32.add (local.get $means) (i32.shl (local.get $C) (i32.const 2))) (local.get $cv)))))
            (f32.load (i32.add (local.get $k) (local.get $cv)))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $t2loop)))
      (local.set $o (i32.add (local.get $o) (i32.shl (local.get $C) (i32.const 2))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $r2loop)))
  )
)
