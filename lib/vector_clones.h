/* Hot loops over frequency bins are compiled twice, for the baseline x86-64 (SSE2) and for AVX2, and the
 * loader picks the clone the CPU runs (GCC function multi-versioning). AVX2 without FMA: a fused
 * multiply-add rounds once where the baseline rounds twice, and the canceller's decisions would then depend
 * on the machine; element-wise arithmetic in wider registers gives the same bits. */
#ifndef INCLUDED_RIA_VECTOR_CLONES_H
#define INCLUDED_RIA_VECTOR_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RIA_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RIA_VECTOR_CLONES
#endif

#endif
