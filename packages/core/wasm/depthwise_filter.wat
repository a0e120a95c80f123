(module
  (import "env" "memory" (memory 1))
  ;; Filter gradient of a depthwise convolution (NHWC, channel multiplier 1, dilation 1):
  ;;   dw[a, b, c] = sum over n, oy, ox of x[n, oy*sh - top + a, ox*sw - left + b, c] * dy[n, oy, ox, c]
  ;; (taps that fall outside x are skipped). Channels in SIMD lanes: 8 at a time written out inline
  ;; when C % 4 = 0 (a call per pixel and tap costs ~25% in V8), else $madd with a scalar tail.
  ;; Each output row (n, oy) is summed into `scr` (KH*KW*C floats), which is then added to `out`:
  ;; a two-level sum: no accumulator takes more than max(OW, N * OH) terms directly.
  ;; Byte pointers; all offsets are i32 and wrap modulo 2^32 (the heap may pass 2 GiB).

  ;; s[i] += x[i] * d[i] for i < C (floats), 4 at a time, then one at a time
  (func $madd (param $s i32) (param $x i32) (param $d i32) (param $C4 i32) (param $C i32)
    (local $i i32) (local $o i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $C4)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (v128.store (i32.add (local.get $s) (local.get $o))
        (f32x4.add (v128.load (i32.add (local.get $s) (local.get $o)))
          (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $o)))
                     (v128.load (i32.add (local.get $d) (local.get $o))))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l)))
    (block $tdone (loop $t
      (br_if $tdone (i32.ge_u (local.get $i) (local.get $C)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (f32.store (i32.add (local.get $s) (local.get $o))
        (f32.add (f32.load (i32.add (local.get $s) (local.get $o)))
          (f32.mul (f32.load (i32.add (local.get $x) (local.get $o)))
                   (f32.load (i32.add (local.get $d) (local.get $o))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $t)))
  )

  ;; out[i] += s[i] for i < n (floats)
  (func $accumulate (param $out i32) (param $s i32) (param $n i32)
    (local $i i32) (local $o i32) (local $n4 i32)
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (v128.store (i32.add (local.get $out) (local.get $o))
        (f32x4.add (v128.load (i32.add (local.get $out) (local.get $o)))
                   (v128.load (i32.add (local.get $s) (local.get $o)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l)))
    (block $tdone (loop $t
      (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (f32.store (i32.add (local.get $out) (local.get $o))
        (f32.add (f32.load (i32.add (local.get $out) (local.get $o)))
                 (f32.load (i32.add (local.get $s) (local.get $o)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $t)))
  )

  (func (export "dw_filter")
    (param $x i32) (param $dy i32) (param $out i32) (param $scr i32)
    (param $N i32) (param $H i32) (param $W i32) (param $C i32)
    (param $OH i32) (param $OW i32) (param $KH i32) (param $KW i32)
    (param $sh i32) (param $sw i32) (param $top i32) (param $left i32)
    (local $n i32) (local $oy i32) (local $ox i32) (local $a i32) (local $b i32)
    (local $iy i32) (local $ix i32) (local $ix0 i32) (local $C4 i32) (local $pix i32)
    (local $taps i32) (local $xRow i32) (local $dyPix i32) (local $sTap i32) (local $xp i32) (local $o i32)
    (local.set $C4 (i32.and (local.get $C) (i32.const -4)))
    (local.set $pix (i32.shl (local.get $C) (i32.const 2)))
    (local.set $taps (i32.mul (i32.mul (local.get $KH) (local.get $KW)) (local.get $C)))
    (memory.fill (local.get $out) (i32.const 0) (i32.shl (local.get $taps) (i32.const 2)))
    (block $ndone (loop $nloop
      (br_if $ndone (i32.ge_u (local.get $n) (local.get $N)))
      (local.set $oy (i32.const 0))
      (block $oydone (loop $oyloop
        (br_if $oydone (i32.ge_u (local.get $oy) (local.get $OH)))
        (memory.fill (local.get $scr) (i32.const 0) (i32.shl (local.get $taps) (i32.const 2)))
        (local.set $a (i32.const 0))
        (block $adone (loop $aloop
          (br_if $adone (i32.ge_u (local.get $a) (local.get $KH)))
          (local.set $iy (i32.add (i32.sub (i32.mul (local.get $oy) (local.get $sh)) (local.get $top)) (local.get $a)))
          (if (i32.and (i32.ge_s (local.get $iy) (i32.const 0)) (i32.lt_s (local.get $iy) (local.get $H)))
            (then
              (local.set $xRow (i32.add (local.get $x)
                (i32.mul (i32.mul (i32.add (i32.mul (local.get $n) (local.get $H)) (local.get $iy)) (local.get $W)) (local.get $pix))))
              (local.set $dyPix (i32.add (local.get $dy)
                (i32.mul (i32.mul (i32.add (i32.mul (local.get $n) (local.get $OH)) (local.get $oy)) (local.get $OW)) (local.get $pix))))
              (local.set $ix0 (i32.sub (i32.const 0) (local.get $left)))
              (local.set $ox (i32.const 0))
              (block $oxdone (loop $oxloop
                (br_if $oxdone (i32.ge_u (local.get $ox) (local.get $OW)))
                (local.set $sTap (i32.add (local.get $scr) (i32.mul (i32.mul (local.get $a) (local.get $KW)) (local.get $pix))))
                (local.set $b (i32.const 0))
                (block $bdone (loop $bloop
                  (br_if $bdone (i32.ge_u (local.get $b) (local.get $KW)))
                  (local.set $ix (i32.add (local.get $ix0) (local.get $b)))
                  (if (i32.and (i32.ge_s (local.get $ix) (i32.const 0)) (i32.lt_s (local.get $ix) (local.get $W)))
                    (then
                      (local.set $xp (i32.add (local.get $xRow) (i32.mul (local.get $ix) (local.get $pix))))
                      (if (i32.eq (local.get $C4) (local.get $C))
                        (then
                          ;; s[c] += x[c] * dy[c], 8 channels (then 4) at a time, inline
                          (local.set $o (i32.const 0))
                          (block $c8done (loop $c8
                            (br_if $c8done (i32.gt_u (i32.add (local.get $o) (i32.const 32)) (local.get $pix)))
                            (v128.store (i32.add (local.get $sTap) (local.get $o))
                              (f32x4.add (v128.load (i32.add (local.get $sTap) (local.get $o)))
                                (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o)))
                                           (v128.load (i32.add (local.get $dyPix) (local.get $o))))))
                            (v128.store offset=16 (i32.add (local.get $sTap) (local.get $o))
                              (f32x4.add (v128.load offset=16 (i32.add (local.get $sTap) (local.get $o)))
                                (f32x4.mul (v128.load offset=16 (i32.add (local.get $xp) (local.get $o)))
                                           (v128.load offset=16 (i32.add (local.get $dyPix) (local.get $o))))))
                            (local.set $o (i32.add (local.get $o) (i32.const 32)))
                            (br $c8)))
                          (if (i32.lt_u (local.get $o) (local.get $pix))
                            (then
                              (v128.store (i32.add (local.get $sTap) (local.get $o))
                                (f32x4.add (v128.load (i32.add (local.get $sTap) (local.get $o)))
                                  (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $o)))
                                             (v128.load (i32.add (local.get $dyPix) (local.get $o)))))))))
                        (else
                          (call $madd (local.get $sTap) (local.get $xp) (local.get $dyPix) (local.get $C4) (local.get $C))))))
                  (local.set $sTap (i32.add (local.get $sTap) (local.get $pix)))
                  (local.set $b (i32.add (local.get $b) (i32.const 1)))
                  (br $bloop)))
                (local.set $dyPix (i32.add (local.get $dyPix) (local.get $pix)))
                (local.set $ix0 (i32.add (local.get $ix0) (local.get $sw)))
                (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
                (br $oxloop)))))
          (local.set $a (i32.add (local.get $a) (i32.const 1)))
          (br $aloop)))
        (call $accumulate (local.get $out) (local.get $scr) (local.get $taps))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $oyloop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nloop)))
  )
)
