(module
  ;; The antialiased bilinear resize of resizeAntialiasRegionU8 (spec §12.3) with the same float32
  ;; roundings as the JS path, op for op: every product of two float32 values is formed in
  ;; float64 (where it is exact), the running sum is added in float64 and rounded to float32
  ;; after every tap. That is the JS `fround(x * w + acc)` (torch's contracted FMA, emulated), so
  ;; the lanes use f64x2 arithmetic and an f32x4.demote / f64x2.promote pair per tap, never
  ;; f32x4.mul + f32x4.add (two roundings) and never a relaxed madd (fused or not, by machine).
  ;;
  ;; The module owns its memory (grown by the caller); all pointers are byte offsets into it.
  ;; Lay-out the caller prepares: a 256-entry float64 table of v / 255 (as float32 values), the
  ;; copied uint8 region, a scratch of 16 interleaved rows, the per-axis tables (xmin, xsize as
  ;; i32; weights as float64, `stride` bytes per output index) and the float32 outputs.
  (memory (export "memory") 1)

  ;; ToTensor of 16 source rows at once, interleaved: t[x*16 + l] = lut[u8 at base_l + x*step]
  ;; (as f64), base_l = the l-th i32 at $bases. Interleaving puts the 16 values a width-pass tap
  ;; reads into two 64-byte lines, so the width pass runs the 16 rows in SIMD lanes with the same
  ;; weights. `step` is the byte step between columns (+-channels: negative for a horizontal flip).
  (func (export "convert16")
    (param $t i32) (param $lut i32) (param $n i32) (param $step i32) (param $bases i32)
    (local $end i32) (local $l i32) (local $b i32) (local $o i32)
    ;; One row (lane) at a time: a single running pointer, and the 16 lanes' stores of a column
    ;; land in the same two cache lines anyway.
    (local.set $end (i32.add (local.get $t) (i32.shl (local.get $n) (i32.const 7))))
    (block $ldone (loop $lane
      (br_if $ldone (i32.ge_u (local.get $l) (i32.const 16)))
      (local.set $b (i32.load (i32.add (local.get $bases) (i32.shl (local.get $l) (i32.const 2)))))
      (local.set $o (i32.add (local.get $t) (i32.shl (local.get $l) (i32.const 3))))
      (block $done (loop $x
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (f64.store (local.get $o)
          (f64.load (i32.add (local.get $lut) (i32.shl (i32.load8_u (local.get $b)) (i32.const 3)))))
        (local.set $b (i32.add (local.get $b) (local.get $step)))
        (local.set $o (i32.add (local.get $o) (i32.const 128)))
        (br $x)))
      (local.set $l (i32.add (local.get $l) (i32.const 1)))
      (br $lane))))

  ;; Width pass of the 16 interleaved rows at $t to $s outputs each: lane l's row goes to
  ;; out + l*row (bytes), output i at +4i. Per output i: acc = round(x[xmin]*w[0]), then
  ;; acc = round(x[xmin+j]*w[j] + acc) for j = 1..xsize-1, as the JS widthPassRow. The
  ;; accumulators live as float32 (demoted) vectors, lanes 0-1 holding two rows' sums; eight of
  ;; them keep enough independent add/demote/promote chains in flight to hide their latency
  ;; (with four, the pass ran about 25% slower).
  (func (export "width16")
    (param $t i32) (param $s i32) (param $xmin i32) (param $xsize i32) (param $stride i32)
    (param $w i32) (param $out i32) (param $row i32)
    (local $p i32) (local $wp i32) (local $j i32) (local $n i32) (local $o i32)
    (local $ws v128) (local $a v128) (local $b v128) (local $c v128) (local $d v128) (local $e v128) (local $f v128) (local $g v128) (local $h v128)
    (block $done (loop $i
      (br_if $done (i32.le_s (local.get $s) (i32.const 0)))
      (local.set $p (i32.add (local.get $t) (i32.shl (i32.load (local.get $xmin)) (i32.const 7))))
      (local.set $n (i32.load (local.get $xsize)))
      (local.set $wp (local.get $w))
      (local.set $ws (v128.load64_splat (local.get $wp)))
      (local.set $a (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=0 (local.get $p)) (local.get $ws))))
      (local.set $b (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=16 (local.get $p)) (local.get $ws))))
      (local.set $c (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=32 (local.get $p)) (local.get $ws))))
      (local.set $d (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=48 (local.get $p)) (local.get $ws))))
      (local.set $e (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=64 (local.get $p)) (local.get $ws))))
      (local.set $f (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=80 (local.get $p)) (local.get $ws))))
      (local.set $g (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=96 (local.get $p)) (local.get $ws))))
      (local.set $h (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=112 (local.get $p)) (local.get $ws))))
      (local.set $j (i32.const 1))
      (block $tdone (loop $tap
        (br_if $tdone (i32.ge_s (local.get $j) (local.get $n)))
        (local.set $p (i32.add (local.get $p) (i32.const 128)))
        (local.set $wp (i32.add (local.get $wp) (i32.const 8)))
        (local.set $ws (v128.load64_splat (local.get $wp)))
        (local.set $a (f32x4.demote_f64x2_zero (f64x2.add
          (f64x2.mul (v128.load offset=0 (local.get $p)) (local.get $ws))
          (f64x2.promote_low_f32x4 (local.get $a)))))
        (local.set $b (f32x4.demote_f64x2_zero (f64x2.add
          (f64x2.mul (v128.load offset=16 (local.get $p)) (local.get $ws))
          (f64x2.promote_low_f32x4 (local.get $b)))))
        (local.set $c (f32x4.demote_f64x2_zero (f64x2.add
          (f64x2.mul (v128.load offset=32 (local.get $p)) (local.get $ws))
          (f64x2.promote_low_f32x4 (local.get $c)))))
        (local.set $d (f32x4.demote_f64x2_zero (f64x2.add
          (f64x2.mul (v128.load offset=48 (local.get $p)) (local.get $ws))
          (f64x2.promote_low_f32x4 (local.get $d)))))
        (local.set $e (f32x4.demote_f64x2_zero (f64x2.add
          (f64x2.mul (v128.load offset=64 (local.get $p)) (local.get $ws))
          (f64x2.promote_low_f32x4 (local.get $e)))))
        (local.set $f (f32x4.demote_f64x2_zero (f64x2.add
          (f64x2.mul (v128.load offset=80 (local.get $p)) (local.get $ws))
          (f64x2.promote_low_f32x4 (local.get $f)))))
        (local.set $g (f32x4.demote_f64x2_zero (f64x2.add
          (f64x2.mul (v128.load offset=96 (local.get $p)) (local.get $ws))
          (f64x2.promote_low_f32x4 (local.get $g)))))
        (local.set $h (f32x4.demote_f64x2_zero (f64x2.add
          (f64x2.mul (v128.load offset=112 (local.get $p)) (local.get $ws))
          (f64x2.promote_low_f32x4 (local.get $h)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tap)))
      (local.set $o (local.get $out))
      (v128.store32_lane 0 (local.get $o) (local.get $a))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 1 (local.get $o) (local.get $a))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 0 (local.get $o) (local.get $b))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 1 (local.get $o) (local.get $b))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 0 (local.get $o) (local.get $c))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 1 (local.get $o) (local.get $c))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 0 (local.get $o) (local.get $d))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 1 (local.get $o) (local.get $d))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 0 (local.get $o) (local.get $e))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 1 (local.get $o) (local.get $e))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 0 (local.get $o) (local.get $f))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 1 (local.get $o) (local.get $f))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 0 (local.get $o) (local.get $g))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 1 (local.get $o) (local.get $g))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 0 (local.get $o) (local.get $h))
      (local.set $o (i32.add (local.get $o) (local.get $row)))
      (v128.store32_lane 1 (local.get $o) (local.get $h))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (local.set $xmin (i32.add (local.get $xmin) (i32.const 4)))
      (local.set $xsize (i32.add (local.get $xsize) (i32.const 4)))
      (local.set $w (i32.add (local.get $w) (local.get $stride)))
      (local.set $s (i32.sub (local.get $s) (i32.const 1)))
      (br $i))))

  ;; Height pass of $planes float32 planes (hin, s) at $mid into (s, s) planes at $dst: output
  ;; row i of a plane = the rows ymin[i] .. ymin[i]+ysize[i]-1 weighted, summed in the JS
  ;; heightPass order (first tap rounded alone, then round(x*w + acc) per tap). Columns in
  ;; SIMD lanes, 8 per step (four accumulators keep the add/demote/promote chains overlapped);
  ;; a scalar tail for s % 8 with the same arithmetic.
  (func (export "height")
    (param $mid i32) (param $planes i32) (param $hin i32) (param $s i32)
    (param $ymin i32) (param $ysize i32) (param $stride i32) (param $w i32) (param $dst i32)
    (local $rb i32) (local $plane i32) (local $pl i32) (local $i i32) (local $x i32) (local $s8 i32)
    (local $src i32) (local $n i32) (local $wrow i32) (local $p i32) (local $wp i32) (local $j i32)
    (local $v v128) (local $u v128) (local $ws v128)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local $acc f32)
    (local.set $rb (i32.shl (local.get $s) (i32.const 2)))
    (local.set $s8 (i32.and (local.get $s) (i32.const -8)))
    (local.set $plane (local.get $mid))
    (block $pdone (loop $ploop
      (br_if $pdone (i32.ge_s (local.get $pl) (local.get $planes)))
      (local.set $i (i32.const 0))
      (block $idone (loop $iloop
        (br_if $idone (i32.ge_s (local.get $i) (local.get $s)))
        (local.set $src (i32.add (local.get $plane)
          (i32.mul (i32.load (i32.add (local.get $ymin) (i32.shl (local.get $i) (i32.const 2)))) (local.get $rb))))
        (local.set $n (i32.load (i32.add (local.get $ysize) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $wrow (i32.add (local.get $w) (i32.mul (local.get $i) (local.get $stride))))
        (local.set $x (i32.const 0))
        (block $xdone (loop $xloop
          (br_if $xdone (i32.ge_s (local.get $x) (local.get $s8)))
          (local.set $p (i32.add (local.get $src) (i32.shl (local.get $x) (i32.const 2))))
          (local.set $wp (local.get $wrow))
          (local.set $ws (v128.load64_splat (local.get $wp)))
          (local.set $v (v128.load offset=0 (local.get $p)))
          (local.set $u (v128.load offset=16 (local.get $p)))
          (local.set $a (f32x4.demote_f64x2_zero (f64x2.mul (f64x2.promote_low_f32x4 (local.get $v)) (local.get $ws))))
          (local.set $b (f32x4.demote_f64x2_zero (f64x2.mul (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))) (local.get $ws))))
          (local.set $c (f32x4.demote_f64x2_zero (f64x2.mul (f64x2.promote_low_f32x4 (local.get $u)) (local.get $ws))))
          (local.set $d (f32x4.demote_f64x2_zero (f64x2.mul (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $u) (local.get $u))) (local.get $ws))))
          (local.set $j (i32.const 1))
          (block $tdone (loop $tap
            (br_if $tdone (i32.ge_s (local.get $j) (local.get $n)))
            (local.set $p (i32.add (local.get $p) (local.get $rb)))
            (local.set $wp (i32.add (local.get $wp) (i32.const 8)))
            (local.set $ws (v128.load64_splat (local.get $wp)))
            (local.set $v (v128.load offset=0 (local.get $p)))
            (local.set $u (v128.load offset=16 (local.get $p)))
            (local.set $a (f32x4.demote_f64x2_zero (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4 (local.get $v)) (local.get $ws))
              (f64x2.promote_low_f32x4 (local.get $a)))))
            (local.set $b (f32x4.demote_f64x2_zero (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4
                (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))) (local.get $ws))
              (f64x2.promote_low_f32x4 (local.get $b)))))
            (local.set $c (f32x4.demote_f64x2_zero (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4 (local.get $u)) (local.get $ws))
              (f64x2.promote_low_f32x4 (local.get $c)))))
            (local.set $d (f32x4.demote_f64x2_zero (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4
                (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $u) (local.get $u))) (local.get $ws))
              (f64x2.promote_low_f32x4 (local.get $d)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $tap)))
          (local.set $p (i32.add (local.get $dst) (i32.shl (local.get $x) (i32.const 2))))
          (v128.store offset=0 (local.get $p)
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $a) (local.get $b)))
          (v128.store offset=16 (local.get $p)
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $c) (local.get $d)))
          (local.set $x (i32.add (local.get $x) (i32.const 8)))
          (br $xloop)))
        (block $xtdone (loop $xtail
          (br_if $xtdone (i32.ge_s (local.get $x) (local.get $s)))
          (local.set $p (i32.add (local.get $src) (i32.shl (local.get $x) (i32.const 2))))
          (local.set $wp (local.get $wrow))
          (local.set $acc (f32.demote_f64 (f64.mul
            (f64.promote_f32 (f32.load (local.get $p))) (f64.load (local.get $wp)))))
          (local.set $j (i32.const 1))
          (block $ttdone (loop $ttap
            (br_if $ttdone (i32.ge_s (local.get $j) (local.get $n)))
            (local.set $p (i32.add (local.get $p) (local.get $rb)))
            (local.set $wp (i32.add (local.get $wp) (i32.const 8)))
            (local.set $acc (f32.demote_f64 (f64.add
              (f64.mul (f64.promote_f32 (f32.load (local.get $p))) (f64.load (local.get $wp)))
              (f64.promote_f32 (local.get $acc)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $ttap)))
          (f32.store (i32.add (local.get $dst) (i32.shl (local.get $x) (i32.const 2))) (local.get $acc))
          (local.set $x (i32.add (local.get $x) (i32.const 1)))
          (br $xtail)))
        (local.set $dst (i32.add (local.get $dst) (local.get $rb)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iloop)))
      (local.set $plane (i32.add (local.get $plane) (i32.mul (local.get $hin) (local.get $rb))))
      (local.set $pl (i32.add (local.get $pl) (i32.const 1)))
      (br $ploop))))
)
