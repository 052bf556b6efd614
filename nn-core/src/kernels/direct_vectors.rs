//! The direct loops in explicit vectors (`Algorithm::Direct`, for a column-major `A` of 4 to
//! 64 rows), one macro for the AVX-512 kernels (`x86.rs`, `f32` and `f64`) and the AVX2 one
//! (`avx2.rs`, `f32`), which differ in their vectors, their masked loads and stores, and how
//! many columns fit their registers.

/// Defines `$direct::<M, K>(c, a, b, accumulate, columns)`, the direct loops for `$t` with
/// fused multiply-adds, and the function it calls for each group of `W` columns: a column of
/// `C` in `⌈M/$lanes⌉` vectors (the last masked: `$mask(rows)`, `$load_tail(ptr, mask)`,
/// `$store_tail(ptr, mask, v)`), `$group(vectors)` columns at a time (at most 8; at most
/// 16 accumulators in all), `C[:, j] = fma(A[:, p], B[p, j], C[:, j])` for `p` in order,
/// from zero or from `C`. The same operations on every element as the generic loops with
/// `FMA` (`super::direct`), so the same bits.
macro_rules! direct_vector_kernels {
    (
        features: $features:literal,
        direct: $direct:ident,
        columns: $columns:ident,
        scalar: $t:ty,
        lanes: $lanes:literal,
        group: $group:path,
        mask: $mask:path,
        zero: $zero:path,
        set1: $set1:path,
        loadu: $loadu:path,
        load_tail: $load_tail:expr,
        storeu: $storeu:path,
        store_tail: $store_tail:expr,
        fmadd: $fmadd:path $(,)?
    ) => {
        #[doc = concat!("[`super::direct`] for `", stringify!($t), "` with `4 ≤ M ≤ 64`, \
            with fused multiply-adds, in vectors of ", stringify!($lanes), " lanes \
            (`kernels/direct_vectors.rs`): the same bits.")]
        ///
        /// # Safety
        #[doc = concat!("As [`super::direct`] (`a` the column-major `M × K` matrix `A`); the \
            CPU has ", $features, ".")]
        #[target_feature(enable = $features)]
        #[inline]
        unsafe fn $direct<const M: usize, const K: usize>(
            c: *mut $t,
            a: *const $t,
            b: View<$t>,
            accumulate: bool,
            columns: core::ops::Range<usize>,
        ) {
            let group = $group(M.div_ceil($lanes));
            let mut j = columns.start;
            // SAFETY (all calls): columns `j..j + W` are inside `columns`, so inside C and B
            // (the caller's contract).
            unsafe {
                while j + group <= columns.end {
                    match group {
                        8 => $columns::<M, K, 8>(c, a, b, accumulate, j),
                        4 => $columns::<M, K, 4>(c, a, b, accumulate, j),
                        3 => $columns::<M, K, 3>(c, a, b, accumulate, j),
                        2 => $columns::<M, K, 2>(c, a, b, accumulate, j),
                        _ => $columns::<M, K, 1>(c, a, b, accumulate, j),
                    }
                    j += group;
                }
                while j < columns.end {
                    $columns::<M, K, 1>(c, a, b, accumulate, j);
                    j += 1;
                }
            }
        }

        #[doc = concat!("Columns `j..j + W` of [`", stringify!($direct), "`]'s product.")]
        ///
        /// # Safety
        /// As its caller's, for columns `j..j + W`.
        #[target_feature(enable = $features)]
        #[inline]
        unsafe fn $columns<const M: usize, const K: usize, const W: usize>(
            c: *mut $t,
            a: *const $t,
            b: View<$t>,
            accumulate: bool,
            j: usize,
        ) {
            let vectors = M.div_ceil($lanes);
            // The last vector's lanes (all of them when `M` is a multiple of the lanes).
            let tail = $mask(M - $lanes * (vectors - 1));
            // SAFETY (every access): rows `lanes·v..` of column `j + l < j + W` of `C` and of
            // column `p < K` of `A`, the last vector masked to the rows inside, and
            // `(p, j + l)` of `B`, are inside them by the caller's contract; masked lanes are
            // not accessed.
            unsafe {
                let load = |ptr: *const $t, v: usize| {
                    if v + 1 == vectors {
                        $load_tail(ptr.add($lanes * v), tail)
                    } else {
                        $loadu(ptr.add($lanes * v))
                    }
                };
                // Accumulator `l·vectors + v`: column `j + l`, vector `v` (at most 16 live).
                let mut acc = [$zero(); 16];
                debug_assert!(W * vectors <= 16);
                if accumulate {
                    for l in 0..W {
                        for v in 0..vectors {
                            acc[l * vectors + v] = load(c.add((j + l) * M), v);
                        }
                    }
                }
                for p in 0..K {
                    let bs: [_; W] = core::array::from_fn(|l| $set1(b.at(p, j + l)));
                    for v in 0..vectors {
                        let column = load(a.add(p * M), v);
                        for (l, &bs) in bs.iter().enumerate() {
                            acc[l * vectors + v] = $fmadd(column, bs, acc[l * vectors + v]);
                        }
                    }
                }
                for l in 0..W {
                    for v in 0..vectors {
                        let (at, acc) = (c.add((j + l) * M + $lanes * v), acc[l * vectors + v]);
                        if v + 1 == vectors {
                            $store_tail(at, tail, acc);
                        } else {
                            $storeu(at, acc);
                        }
                    }
                }
            }
        }
    };
}
