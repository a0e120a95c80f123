(module
  (import "env" "memory" (memory 1))
  ;; out[i] = x[i] > 0 ? dy[i] : alpha * dy[i] (the gradient of LeakyReLU; NaN x takes the alpha
  ;; branch, as tfjs's greater/where form does), float32, four at a time, then one at a time.
  ;; Byte pointers; offsets wrap modulo 2^32.
  (func (export "leaky_relu_grad") (param $x i32) (param $dy i32) (param $out i32) (param $n i32) (param $alpha f32)
    (local $i i32) (local $o i32) (local $n4 i32) (local $a v128) (local $d v128)
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (local.set $a (f32x4.splat (local.get $alpha)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (local.set $d (v128.load (i32.add (local.get $dy) (local.get $o))))
      (v128.store (i32.add (local.get $out) (local.get $o))
        (v128.bitselect (local.get $d) (f32x4.mul (local.get $d) (local.get $a))
          (f32x4.gt (v128.load (i32.add (local.get $x) (local.get $o))) (f32x4.splat (f32.const 0)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l)))
    (block $tdone (loop $t
      (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (f32.store (i32.add (local.get $out) (local.get $o))
        (select (f32.load (i32.add (local.get $dy) (local.get $o)))
          (f32.mul (f32.load (i32.add (local.get $dy) (local.get $o))) (local.get $alpha))
          (f32.gt (f32.load (i32.add (local.get $x) (local.get $o))) (f32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $t)))
  )
)
