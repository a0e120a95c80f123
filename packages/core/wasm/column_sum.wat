(module
  (import "env" "memory" (memory 1))
  ;; out[j] = sum over i < rows of x[i * cols + j], float32, summed in row order (the order of
  ;; tfjs-wasm's Sum after its transpose, so the results are the same to the bit). Four columns
  ;; at a time, then one at a time. Byte pointers; offsets wrap modulo 2^32.
  (func (export "column_sum") (param $x i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $j i32) (local $row i32) (local $cols4 i32) (local $rowBytes i32) (local $o i32)
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $rowBytes (i32.shl (local.get $cols) (i32.const 2)))
    (memory.fill (local.get $out) (i32.const 0) (local.get $rowBytes))
    (local.set $row (local.get $x))
    (block $idone (loop $iloop
      (br_if $idone (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $jdone (loop $jloop
        (br_if $jdone (i32.ge_u (local.get $j) (local.get $cols4)))
        (local.set $o (i32.shl (local.get $j) (i32.const 2)))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (f32x4.add (v128.load (i32.add (local.get $out) (local.get $o)))
                     (v128.load (i32.add (local.get $row) (local.get $o)))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $jloop)))
      (block $tdone (loop $tloop
        (br_if $tdone (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $o (i32.shl (local.get $j) (i32.const 2)))
        (f32.store (i32.add (local.get $out) (local.get $o))
          (f32.add (f32.load (i32.add (local.get $out) (local.get $o)))
                   (f32.load (i32.add (local.get $row) (local.get $o)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tloop)))
      (local.set $row (i32.add (local.get $row) (local.get $rowBytes)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $iloop)))
  )
)
