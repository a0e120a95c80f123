(module
  (import "env" "memory" (memory 1))
  ;; C[b] = op(A[b]) . op(B[b]) with op = identity or transpose (float32, row-major, byte
  ;; pointers): C is M x N, op(A) M x K, op(B) K x N. A batch stride of 0 broadcasts one matrix
  ;; to every product.
  ;;
  ;; C is computed in 4 x 8 tiles held in eight v128 locals (registers) over a block of up to
  ;; 256 values of K; a tile's k-th step reads 4 floats of op(A) and 8 of op(B). Before each
  ;; block, op(A) and op(B) are copied into `scratch` in the order the tiles read them (A in
  ;; groups of 4 rows, [k][4]; B in panels of 8 columns, [k][8]), so every read is sequential
  ;; whatever the transposes, and a block stays in cache while all tiles pass over it. Rows and
  ;; columns past the edge are packed as copies of the last row / zero columns; edge tiles go
  ;; to C through a small buffer. The blocks after the first add to C.
  ;;
  ;; scratch: 256 * (Np + Mp) + 32 floats (Np = N rounded up to 8, Mp = M rounded up to 4; 256
  ;; may be min(K, 256)). All offsets are i32 and wrap modulo 2^32 (the heap may pass 2 GiB).

  ;; dst[(ip * kc + k) * 4 + r] = A(min(4 ip + r, M - 1), k) for k < kc, with A(i, k) at
  ;; a + i * rowStep + k * kStep.
  (func $packA (param $a i32) (param $rowStep i32) (param $kStep i32) (param $M i32) (param $kc i32) (param $dst i32)
    (local $i i32) (local $k i32) (local $s0 i32) (local $s1 i32) (local $s2 i32) (local $s3 i32) (local $last i32)
    (local.set $last (i32.sub (local.get $M) (i32.const 1)))
    (block $idone (loop $iloop
      (br_if $idone (i32.ge_u (local.get $i) (local.get $M)))
      (local.set $s0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rowStep))))
      (local.set $s1 (i32.add (local.get $a) (i32.mul (local.get $rowStep)
        (select (i32.add (local.get $i) (i32.const 1)) (local.get $last) (i32.lt_u (i32.add (local.get $i) (i32.const 1)) (local.get $M))))))
      (local.set $s2 (i32.add (local.get $a) (i32.mul (local.get $rowStep)
        (select (i32.add (local.get $i) (i32.const 2)) (local.get $last) (i32.lt_u (i32.add (local.get $i) (i32.const 2)) (local.get $M))))))
      (local.set $s3 (i32.add (local.get $a) (i32.mul (local.get $rowStep)
        (select (i32.add (local.get $i) (i32.const 3)) (local.get $last) (i32.lt_u (i32.add (local.get $i) (i32.const 3)) (local.get $M))))))
      (local.set $k (i32.const 0))
      (if (i32.and (i32.eq (local.get $rowStep) (i32.const 4)) (i32.lt_u (i32.add (local.get $i) (i32.const 3)) (local.get $M)))
        (then
          ;; transposed A, a full group: its 4 rows are neighbours in memory
          (block $vdone (loop $vloop
            (br_if $vdone (i32.ge_u (local.get $k) (local.get $kc)))
            (v128.store (local.get $dst) (v128.load (local.get $s0)))
            (local.set $s0 (i32.add (local.get $s0) (local.get $kStep)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $vloop))))
        (else
          (block $kdone (loop $kloop
            (br_if $kdone (i32.ge_u (local.get $k) (local.get $kc)))
            (f32.store offset=0 (local.get $dst) (f32.load (local.get $s0)))
            (f32.store offset=4 (local.get $dst) (f32.load (local.get $s1)))
            (f32.store offset=8 (local.get $dst) (f32.load (local.get $s2)))
            (f32.store offset=12 (local.get $dst) (f32.load (local.get $s3)))
            (local.set $s0 (i32.add (local.get $s0) (local.get $kStep)))
            (local.set $s1 (i32.add (local.get $s1) (local.get $kStep)))
            (local.set $s2 (i32.add (local.get $s2) (local.get $kStep)))
            (local.set $s3 (i32.add (local.get $s3) (local.get $kStep)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $kloop)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $iloop)))
  )

  ;; dst[(jp * kc + k) * 8 + c] = B(k, 8 jp + c), 0 for columns past N, for k < kc, with
  ;; B(k, j) at b + k * kStep + j * colStep.
  (func $packB (param $b i32) (param $kStep i32) (param $colStep i32) (param $N i32) (param $kc i32) (param $dst i32)
    (local $j i32) (local $k i32) (local $c i32) (local $cols i32) (local $s i32) (local $row i32)
    (block $jdone (loop $jloop
      (br_if $jdone (i32.ge_u (local.get $j) (local.get $N)))
      (local.set $cols (select (i32.const 8) (i32.sub (local.get $N) (local.get $j))
        (i32.gt_u (i32.sub (local.get $N) (local.get $j)) (i32.const 8))))
      (local.set $row (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $colStep))))
      (local.set $k (i32.const 0))
      (if (i32.and (i32.eq (local.get $colStep) (i32.const 4)) (i32.eq (local.get $cols) (i32.const 8)))
        (then
          (block $vdone (loop $vloop
            (br_if $vdone (i32.ge_u (local.get $k) (local.get $kc)))
            (v128.store (local.get $dst) (v128.load (local.get $row)))
            (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $row)))
            (local.set $row (i32.add (local.get $row) (local.get $kStep)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $vloop))))
        (else
          (block $kdone (loop $kloop
            (br_if $kdone (i32.ge_u (local.get $k) (local.get $kc)))
            (local.set $s (local.get $row))
            (local.set $c (i32.const 0))
            (block $cdone (loop $cloop
              (br_if $cdone (i32.ge_u (local.get $c) (i32.const 8)))
              (f32.store (i32.add (local.get $dst) (i32.shl (local.get $c) (i32.const 2)))
                (select (f32.load (local.get $s)) (f32.const 0) (i32.lt_u (local.get $c) (local.get $cols))))
              (if (i32.lt_u (i32.add (local.get $c) (i32.const 1)) (local.get $cols))
                (then (local.set $s (i32.add (local.get $s) (local.get $colStep)))))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br $cloop)))
            (local.set $row (i32.add (local.get $row) (local.get $kStep)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $kloop)))))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $jloop)))
  )

  ;; One 4 x 8 tile of C from a packed A group (ap) and B panel (bp) over kc steps:
  ;; C[r, c] (+)= sum_k ap[k][r] * bp[k][c] for r < rows, c < cols; with $acc the sum is added
  ;; to what C holds.
  (func $tile (param $ap i32) (param $bp i32) (param $kc i32) (param $c i32) (param $cRow i32)
              (param $rows i32) (param $cols i32) (param $tmp i32) (param $acc i32)
    (local $b0 v128) (local $b1 v128) (local $s v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $r i32) (local $j i32) (local $src i32) (local $dst i32) (local $full i32) (local $step i32)
    (local.set $full (i32.and (i32.eq (local.get $rows) (i32.const 4)) (i32.eq (local.get $cols) (i32.const 8))))
    (if (local.get $acc)
      (then
        (if (i32.eqz (local.get $full))
          (then
            ;; the edge tile's part of C into tmp, whose rows then read like full ones
            (block $ldone (loop $lloop
              (br_if $ldone (i32.ge_u (local.get $r) (local.get $rows)))
              (memory.copy (i32.add (local.get $tmp) (i32.shl (local.get $r) (i32.const 5)))
                (i32.add (local.get $c) (i32.mul (local.get $r) (local.get $cRow)))
                (i32.shl (local.get $cols) (i32.const 2)))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br $lloop)))
            (local.set $r (i32.const 0))))
        (local.set $src (select (local.get $c) (local.get $tmp) (local.get $full)))
        (local.set $step (select (local.get $cRow) (i32.const 32) (local.get $full)))
        (local.set $c00 (v128.load (local.get $src)))
        (local.set $c01 (v128.load offset=16 (local.get $src)))
        (local.set $src (i32.add (local.get $src) (local.get $step)))
        (local.set $c10 (v128.load (local.get $src)))
        (local.set $c11 (v128.load offset=16 (local.get $src)))
        (local.set $src (i32.add (local.get $src) (local.get $step)))
        (local.set $c20 (v128.load (local.get $src)))
        (local.set $c21 (v128.load offset=16 (local.get $src)))
        (local.set $src (i32.add (local.get $src) (local.get $step)))
        (local.set $c30 (v128.load (local.get $src)))
        (local.set $c31 (v128.load offset=16 (local.get $src)))))
    (block $kdone (loop $kloop
      (br_if $kdone (i32.eqz (local.get $kc)))
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $s (f32x4.splat (f32.load offset=0 (local.get $ap))))
      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (f32x4.splat (f32.load offset=4 (local.get $ap))))
      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (f32x4.splat (f32.load offset=8 (local.get $ap))))
      (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (f32x4.splat (f32.load offset=12 (local.get $ap))))
      (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (local.set $kc (i32.sub (local.get $kc) (i32.const 1)))
      (br $kloop)))
    (if (local.get $full)
      (then
        (v128.store (local.get $c) (local.get $c00))
        (v128.store offset=16 (local.get $c) (local.get $c01))
        (local.set $c (i32.add (local.get $c) (local.get $cRow)))
        (v128.store (local.get $c) (local.get $c10))
        (v128.store offset=16 (local.get $c) (local.get $c11))
        (local.set $c (i32.add (local.get $c) (local.get $cRow)))
        (v128.store (local.get $c) (local.get $c20))
        (v128.store offset=16 (local.get $c) (local.get $c21))
        (local.set $c (i32.add (local.get $c) (local.get $cRow)))
        (v128.store (local.get $c) (local.get $c30))
        (v128.store offset=16 (local.get $c) (local.get $c31)))
      (else
        (v128.store offset=0 (local.get $tmp) (local.get $c00))
        (v128.store offset=16 (local.get $tmp) (local.get $c01))
        (v128.store offset=32 (local.get $tmp) (local.get $c10))
        (v128.store offset=48 (local.get $tmp) (local.get $c11))
        (v128.store offset=64 (local.get $tmp) (local.get $c20))
        (v128.store offset=80 (local.get $tmp) (local.get $c21))
        (v128.store offset=96 (local.get $tmp) (local.get $c30))
        (v128.store offset=112 (local.get $tmp) (local.get $c31))
        (block $rdone (loop $rloop
          (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
          (local.set $src (i32.add (local.get $tmp) (i32.shl (local.get $r) (i32.const 5))))
          (local.set $dst (i32.add (local.get $c) (i32.mul (local.get $r) (local.get $cRow))))
          (local.set $j (i32.const 0))
          (block $jdone (loop $jloop
            (br_if $jdone (i32.ge_u (local.get $j) (local.get $cols)))
            (f32.store (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2)))
              (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jloop)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $rloop)))))
  )

  (func (export "bmm") (param $a i32) (param $b i32) (param $c i32) (param $batch i32)
        (param $M i32) (param $K i32) (param $N i32) (param $tA i32) (param $tB i32)
        (param $aStride i32) (param $bStride i32) (param $scratch i32)
    (local $Np i32) (local $Mp i32) (local $kcMax i32) (local $bPack i32) (local $aPack i32) (local $tmp i32)
    (local $aRow i32) (local $aK i32) (local $bK i32) (local $bCol i32) (local $cRow i32)
    (local $bi i32) (local $aB i32) (local $bB i32) (local $cB i32)
    (local $i i32) (local $j i32) (local $k0 i32) (local $kc i32) (local $single i32)
    (local.set $Np (i32.and (i32.add (local.get $N) (i32.const 7)) (i32.const -8)))
    (local.set $Mp (i32.and (i32.add (local.get $M) (i32.const 3)) (i32.const -4)))
    (local.set $kcMax (select (i32.const 256) (local.get $K) (i32.gt_u (local.get $K) (i32.const 256))))
    (local.set $bPack (local.get $scratch))
    (local.set $aPack (i32.add (local.get $bPack) (i32.shl (i32.mul (local.get $kcMax) (local.get $Np)) (i32.const 2))))
    (local.set $tmp (i32.add (local.get $aPack) (i32.shl (i32.mul (local.get $kcMax) (local.get $Mp)) (i32.const 2))))
    ;; strides (bytes) of op(A)(i, k) and op(B)(k, j)
    (local.set $aRow (select (i32.const 4) (i32.shl (local.get $K) (i32.const 2)) (local.get $tA)))
    (local.set $aK (select (i32.shl (local.get $M) (i32.const 2)) (i32.const 4) (local.get $tA)))
    (local.set $bK (select (i32.const 4) (i32.shl (local.get $N) (i32.const 2)) (local.get $tB)))
    (local.set $bCol (select (i32.shl (local.get $K) (i32.const 2)) (i32.const 4) (local.get $tB)))
    (local.set $cRow (i32.shl (local.get $N) (i32.const 2)))
    ;; one K block: a broadcast operand is packed once for the whole batch
    (local.set $single (i32.le_u (local.get $K) (i32.const 256)))
    (block $bdone (loop $bloop
      (br_if $bdone (i32.ge_u (local.get $bi) (local.get $batch)))
      (local.set $aB (i32.add (local.get $a) (i32.mul (local.get $bi) (local.get $aStride))))
      (local.set $bB (i32.add (local.get $b) (i32.mul (local.get $bi) (local.get $bStride))))
      (local.set $cB (i32.add (local.get $c) (i32.shl (i32.mul (i32.mul (local.get $bi) (local.get $M)) (local.get $N)) (i32.const 2))))
      (local.set $k0 (i32.const 0))
      (block $k0done (loop $k0loop
        (local.set $kc (select (i32.const 256) (i32.sub (local.get $K) (local.get $k0))
          (i32.gt_u (i32.sub (local.get $K) (local.get $k0)) (i32.const 256))))
        (if (i32.or (i32.or (i32.eqz (local.get $bi)) (i32.ne (local.get $bStride) (i32.const 0))) (i32.eqz (local.get $single)))
          (then
            (call $packB (i32.add (local.get $bB) (i32.mul (local.get $k0) (local.get $bK)))
              (local.get $bK) (local.get $bCol) (local.get $N) (local.get $kc) (local.get $bPack))))
        (if (i32.or (i32.or (i32.eqz (local.get $bi)) (i32.ne (local.get $aStride) (i32.const 0))) (i32.eqz (local.get $single)))
          (then
            (call $packA (i32.add (local.get $aB) (i32.mul (local.get $k0) (local.get $aK)))
              (local.get $aRow) (local.get $aK) (local.get $M) (local.get $kc) (local.get $aPack))))
        (local.set $j (i32.const 0))
        (block $jdone (loop $jloop
          (br_if $jdone (i32.ge_u (local.get $j) (local.get $N)))
          (local.set $i (i32.const 0))
          (block $idone (loop $iloop
            (br_if $idone (i32.ge_u (local.get $i) (local.get $M)))
            (call $tile
              (i32.add (local.get $aPack) (i32.shl (i32.mul (local.get $i) (local.get $kc)) (i32.const 2)))
              (i32.add (local.get $bPack) (i32.shl (i32.mul (local.get $j) (local.get $kc)) (i32.const 2)))
              (local.get $kc)
              (i32.add (local.get $cB) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $N)) (local.get $j)) (i32.const 2)))
              (local.get $cRow)
              (select (i32.const 4) (i32.sub (local.get $M) (local.get $i)) (i32.gt_u (i32.sub (local.get $M) (local.get $i)) (i32.const 4)))
              (select (i32.const 8) (i32.sub (local.get $N) (local.get $j)) (i32.gt_u (i32.sub (local.get $N) (local.get $j)) (i32.const 8)))
              (local.get $tmp)
              (i32.ne (local.get $k0) (i32.const 0)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $iloop)))
          (local.set $j (i32.add (local.get $j) (i32.const 8)))
          (br $jloop)))
        (local.set $k0 (i32.add (local.get $k0) (i32.const 256)))
        (br_if $k0loop (i32.lt_u (local.get $k0) (local.get $K)))))
      (local.set $bi (i32.add (local.get $bi) (i32.const 1)))
      (br $bloop)))
  )
)
