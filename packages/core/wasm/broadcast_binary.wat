(module
  (import "env" "memory" (memory 1))
  ;; Broadcasting add / sub / mul on float32 rows of `cols` values (cols a multiple of 4):
  ;;   suffix: out[i, j] = a[i, j] op b[j]   (b: one row shared by every row: a bias, a LayerNorm weight)
  ;;   prefix: out[i, j] = a[i, j] op b[i]   (b: one value per row: a LayerNorm mean or 1/sigma)
  ;; op: 0 add, 1 sub (a - b), 2 mul, 3 reverse sub (b - a). Each op has its own loop (chosen once
  ;; per call): tfjs-wasm's broadcasting loop computes every element's source index and ran at a
  ;; quarter of its same-shape speed. Byte pointers; offsets wrap modulo 2^32.

  (func (export "suffix") (param $op i32) (param $a i32) (param $b i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $j i32) (local $rowBytes i32) (local $arow i32) (local $orow i32)
    (local $x v128) (local $y v128)
    (local.set $rowBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $arow (local.get $a))
    (local.set $orow (local.get $out))
    (block $op3 (block $op2 (block $op1 (block $op0
      (br_table $op0 $op1 $op2 $op3 (local.get $op)))
      ;; add
      (block $done_add (loop $rows_add
        (br_if $done_add (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $j (i32.const 0))
        (block $jdone_add (loop $cols_add
          (br_if $jdone_add (i32.ge_u (local.get $j) (local.get $rowBytes)))
          (local.set $x (v128.load (i32.add (local.get $arow) (local.get $j))))
          (local.set $y (v128.load (i32.add (local.get $b) (local.get $j))))
          (v128.store (i32.add (local.get $orow) (local.get $j)) (f32x4.add (local.get $x) (local.get $y)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $cols_add)))
        (local.set $arow (i32.add (local.get $arow) (local.get $rowBytes)))
        (local.set $orow (i32.add (local.get $orow) (local.get $rowBytes)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows_add)))
      (return))
      ;; sub
      (block $done_sub (loop $rows_sub
        (br_if $done_sub (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $j (i32.const 0))
        (block $jdone_sub (loop $cols_sub
          (br_if $jdone_sub (i32.ge_u (local.get $j) (local.get $rowBytes)))
          (local.set $x (v128.load (i32.add (local.get $arow) (local.get $j))))
          (local.set $y (v128.load (i32.add (local.get $b) (local.get $j))))
          (v128.store (i32.add (local.get $orow) (local.get $j)) (f32x4.sub (local.get $x) (local.get $y)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $cols_sub)))
        (local.set $arow (i32.add (local.get $arow) (local.get $rowBytes)))
        (local.set $orow (i32.add (local.get $orow) (local.get $rowBytes)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows_sub)))
      (return))
      ;; mul
      (block $done_mul (loop $rows_mul
        (br_if $done_mul (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $j (i32.const 0))
        (block $jdone_mul (loop $cols_mul
          (br_if $jdone_mul (i32.ge_u (local.get $j) (local.get $rowBytes)))
          (local.set $x (v128.load (i32.add (local.get $arow) (local.get $j))))
          (local.set $y (v128.load (i32.add (local.get $b) (local.get $j))))
          (v128.store (i32.add (local.get $orow) (local.get $j)) (f32x4.mul (local.get $x) (local.get $y)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $cols_mul)))
        (local.set $arow (i32.add (local.get $arow) (local.get $rowBytes)))
        (local.set $orow (i32.add (local.get $orow) (local.get $rowBytes)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows_mul)))
      (return))
      ;; rsub
      (block $done_rsub (loop $rows_rsub
        (br_if $done_rsub (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $j (i32.const 0))
        (block $jdone_rsub (loop $cols_rsub
          (br_if $jdone_rsub (i32.ge_u (local.get $j) (local.get $rowBytes)))
          (local.set $x (v128.load (i32.add (local.get $arow) (local.get $j))))
          (local.set $y (v128.load (i32.add (local.get $b) (local.get $j))))
          (v128.store (i32.add (local.get $orow) (local.get $j)) (f32x4.sub (local.get $y) (local.get $x)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $cols_rsub)))
        (local.set $arow (i32.add (local.get $arow) (local.get $rowBytes)))
        (local.set $orow (i32.add (local.get $orow) (local.get $rowBytes)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows_rsub)))
  )

  (func (export "prefix") (param $op i32) (param $a i32) (param $b i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $j i32) (local $rowBytes i32) (local $arow i32) (local $orow i32) (local $brow i32)
    (local $x v128) (local $y v128)
    (local.set $rowBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $arow (local.get $a))
    (local.set $orow (local.get $out))
    (local.set $brow (local.get $b))
    (block $op3 (block $op2 (block $op1 (block $op0
      (br_table $op0 $op1 $op2 $op3 (local.get $op)))
      ;; add
      (block $done_add (loop $rows_add
        (br_if $done_add (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $y (v128.load32_splat (local.get $brow)))
        (local.set $j (i32.const 0))
        (block $jdone_add (loop $cols_add
          (br_if $jdone_add (i32.ge_u (local.get $j) (local.get $rowBytes)))
          (local.set $x (v128.load (i32.add (local.get $arow) (local.get $j))))
          (v128.store (i32.add (local.get $orow) (local.get $j)) (f32x4.add (local.get $x) (local.get $y)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $cols_add)))
        (local.set $arow (i32.add (local.get $arow) (local.get $rowBytes)))
        (local.set $orow (i32.add (local.get $orow) (local.get $rowBytes)))
        (local.set $brow (i32.add (local.get $brow) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows_add)))
      (return))
      ;; sub
      (block $done_sub (loop $rows_sub
        (br_if $done_sub (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $y (v128.load32_splat (local.get $brow)))
        (local.set $j (i32.const 0))
        (block $jdone_sub (loop $cols_sub
          (br_if $jdone_sub (i32.ge_u (local.get $j) (local.get $rowBytes)))
          (local.set $x (v128.load (i32.add (local.get $arow) (local.get $j))))
          (v128.store (i32.add (local.get $orow) (local.get $j)) (f32x4.sub (local.get $x) (local.get $y)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $cols_sub)))
        (local.set $arow (i32.add (local.get $arow) (local.get $rowBytes)))
        (local.set $orow (i32.add (local.get $orow) (local.get $rowBytes)))
        (local.set $brow (i32.add (local.get $brow) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows_sub)))
      (return))
      ;; mul
      (block $done_mul (loop $rows_mul
        (br_if $done_mul (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $y (v128.load32_splat (local.get $brow)))
        (local.set $j (i32.const 0))
        (block $jdone_mul (loop $cols_mul
          (br_if $jdone_mul (i32.ge_u (local.get $j) (local.get $rowBytes)))
          (local.set $x (v128.load (i32.add (local.get $arow) (local.get $j))))
          (v128.store (i32.add (local.get $orow) (local.get $j)) (f32x4.mul (local.get $x) (local.get $y)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $cols_mul)))
        (local.set $arow (i32.add (local.get $arow) (local.get $rowBytes)))
        (local.set $orow (i32.add (local.get $orow) (local.get $rowBytes)))
        (local.set $brow (i32.add (local.get $brow) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows_mul)))
      (return))
      ;; rsub
      (block $done_rsub (loop $rows_rsub
        (br_if $done_rsub (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $y (v128.load32_splat (local.get $brow)))
        (local.set $j (i32.const 0))
        (block $jdone_rsub (loop $cols_rsub
          (br_if $jdone_rsub (i32.ge_u (local.get $j) (local.get $rowBytes)))
          (local.set $x (v128.load (i32.add (local.get $arow) (local.get $j))))
          (v128.store (i32.add (local.get $orow) (local.get $j)) (f32x4.sub (local.get $y) (local.get $x)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $cols_rsub)))
        (local.set $arow (i32.add (local.get $arow) (local.get $rowBytes)))
        (local.set $orow (i32.add (local.get $orow) (local.get $rowBytes)))
        (local.set $brow (i32.add (local.get $brow) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows_rsub)))
  )
)