// The dot-product kernels (HNSW distances, the exact scan at batch 1) and their one-time dispatch. See include/CArborKernels.h.
//
// Each SIMD kernel carries its own `target` attribute, so the package needs no -m flags and the rest
// of the binary stays baseline x86-64; a kernel runs only after `__builtin_cpu_supports` said yes.

#include "CArborKernels.h"

#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#define ARBOR_X86 1
#include <immintrin.h>
#endif

// MARK: - Portable

float arbor_dot_portable(const float *a, const float *b, size_t n) {
    // 16 independent lanes (lane j sums i % 16 == j), written so the compiler can keep them in vector
    // registers of the baseline ISA; then a fixed pairwise reduction.
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int j = 0; j < 16; j++) acc[j] += a[i + j] * b[i + j];
    }
    for (int j = 0; i + (size_t)j < n; j++) acc[j] += a[i + j] * b[i + j];
    for (int w = 8; w >= 1; w /= 2) {
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];
    }
    return acc[0];
}

#if ARBOR_X86

// MARK: - Shared reduction (SSE, baseline): 8 lanes -> 1 in a fixed order.

/// lanes (l0..l3) + (h0..h3), then (v0 + v2, v1 + v3), then their sum.
static inline float arbor_reduce_halves(__m128 lo, __m128 hi) {
    __m128 v = _mm_add_ps(lo, hi);
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
    return _mm_cvtss_f32(v);
}

// MARK: - AVX2 + FMA: 64 lanes in 8 ymm accumulators (y_k lane j = lane 8k + j).

static const int32_t arbor_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

__attribute__((target("avx2,fma")))
static float arbor_dot_avx2(const float *a, const float *b, size_t n) {
    __m256 y[8];
    for (int k = 0; k < 8; k++) y[k] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        y[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), y[0]);
        y[1] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), y[1]);
        y[2] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), y[2]);
        y[3] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), y[3]);
        y[4] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 32), _mm256_loadu_ps(b + i + 32), y[4]);
        y[5] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 40), _mm256_loadu_ps(b + i + 40), y[5]);
        y[6] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 48), _mm256_loadu_ps(b + i + 48), y[6]);
        y[7] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 56), _mm256_loadu_ps(b + i + 56), y[7]);
    }
    // Tail (< 64): chunks of 8 into y[0], y[1], ...; the last one masked (masked-off lanes load 0,
    // and fma(0, 0, acc) == acc because an accumulator that starts at +0 is never -0).
    for (int k = 0; i < n; k++) {
        size_t take = n - i < 8 ? n - i : 8;
        if (take == 8) {
            y[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), y[k]);
        } else {
            __m256i m = _mm256_loadu_si256((const __m256i *)(arbor_mask_table + 8 - take));
            y[k] = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), y[k]);
        }
        i += take;
    }
    // The AVX-512 tree: t = (s0 + s1) + (s2 + s3) with s_m = (y[2m], y[2m+1]), then its halves.
    __m256 lo = _mm256_add_ps(_mm256_add_ps(y[0], y[2]), _mm256_add_ps(y[4], y[6]));
    __m256 hi = _mm256_add_ps(_mm256_add_ps(y[1], y[3]), _mm256_add_ps(y[5], y[7]));
    __m256 u = _mm256_add_ps(lo, hi);
    return arbor_reduce_halves(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

// MARK: - AVX-512F: 64 lanes in 4 zmm accumulators (s_m lane j = lane 16m + j).

__attribute__((target("avx512f")))
static float arbor_dot_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    // Tail (< 64): chunks of 16 into s0, s1, ...; masked loads read nothing past `n`.
    for (int k = 0; i < n; k++) {
        size_t take = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)((1u << take) - 1u);
        __m512 p = _mm512_maskz_loadu_ps(m, a + i), q = _mm512_maskz_loadu_ps(m, b + i);
        switch (k) {
        case 0: s0 = _mm512_fmadd_ps(p, q, s0); break;
        case 1: s1 = _mm512_fmadd_ps(p, q, s1); break;
        case 2: s2 = _mm512_fmadd_ps(p, q, s2); break;
        default: s3 = _mm512_fmadd_ps(p, q, s3); break;
        }
        i += take;
    }
    __m512 t = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
    __m256 lo = _mm512_castps512_ps256(t);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1));
    __m256 u = _mm256_add_ps(lo, hi);
    return arbor_reduce_halves(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

// MARK: - Contiguous rows (the exact scan's batch-1 path): the same kernels, inlined in a row loop.

/// Sum of the 16 lanes of each of four accumulators, in one fixed order: 512 -> 256 -> 128 bits by
/// halves, then two rounds of horizontal adds: out[j] = ((c_j0 + c_j1) + (c_j2 + c_j3)).
__attribute__((target("avx512f")))
static inline __m128 arbor_reduce4_avx512(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
#define ARBOR_HALF(a) _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)))
#define ARBOR_QUARTER(b) _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1))
    __m256 b0 = ARBOR_HALF(a0), b1 = ARBOR_HALF(a1), b2 = ARBOR_HALF(a2), b3 = ARBOR_HALF(a3);
    __m128 c0 = ARBOR_QUARTER(b0), c1 = ARBOR_QUARTER(b1), c2 = ARBOR_QUARTER(b2), c3 = ARBOR_QUARTER(b3);
#undef ARBOR_HALF
#undef ARBOR_QUARTER
    return _mm_hadd_ps(_mm_hadd_ps(c0, c1), _mm_hadd_ps(c2, c3));
}

/// Four rows at a time, each row summed in one 16-lane accumulator (lane j holds the elements
/// i % 16 == j in increasing i; the last chunk is a masked load), then `arbor_reduce4_avx512`. A
/// leftover row runs the same arithmetic in lane 0 of the same reduction, so every row's score is
/// the same function of its values wherever it sits (duplicate rows tie exactly).
__attribute__((target("avx512f")))
static void arbor_dot_rows_avx512(const float *query, const float *base, size_t count, size_t n, float *out) {
    const size_t full = n / 16, rest = n % 16;
    const __mmask16 tail = (__mmask16)((1u << rest) - 1u);
    size_t r = 0;
    for (; r + 4 <= count; r += 4) {
        const float *p0 = base + r * n, *p1 = p0 + n, *p2 = p1 + n, *p3 = p2 + n;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        size_t i = 0;
        for (size_t c = 0; c < full; c++, i += 16) {
            __m512 q = _mm512_loadu_ps(query + i);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p0 + i), q, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(p1 + i), q, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(p2 + i), q, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(p3 + i), q, a3);
        }
        if (rest) {
            __m512 q = _mm512_maskz_loadu_ps(tail, query + i);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, p0 + i), q, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, p1 + i), q, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, p2 + i), q, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, p3 + i), q, a3);
        }
        _mm_storeu_ps(out + r, arbor_reduce4_avx512(a0, a1, a2, a3));
    }
    for (; r < count; r++) {
        const float *p0 = base + r * n;
        __m512 a0 = _mm512_setzero_ps();
        size_t i = 0;
        for (size_t c = 0; c < full; c++, i += 16) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p0 + i), _mm512_loadu_ps(query + i), a0);
        }
        if (rest) a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, p0 + i), _mm512_maskz_loadu_ps(tail, query + i), a0);
        out[r] = _mm_cvtss_f32(arbor_reduce4_avx512(a0, a0, a0, a0));
    }
}

__attribute__((target("avx2,fma")))
static void arbor_dot_rows_avx2(const float *query, const float *base, size_t count, size_t n, float *out) {
    for (size_t r = 0; r < count; r++) out[r] = arbor_dot_avx2(query, base + r * n, n);
}

#endif  // ARBOR_X86

static void arbor_dot_rows_portable(const float *query, const float *base, size_t count, size_t n, float *out) {
    for (size_t r = 0; r < count; r++) out[r] = arbor_dot_portable(query, base + r * n, n);
}

// MARK: - Capabilities and dispatch

int arbor_dot_supported(arbor_dot_kernel kernel) {
    switch (kernel) {
    case ARBOR_DOT_PORTABLE: return 1;
#if ARBOR_X86
    case ARBOR_DOT_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ARBOR_DOT_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
#endif
    default: return 0;
    }
}

arbor_dot_fn arbor_dot_function(arbor_dot_kernel kernel) {
    if (!arbor_dot_supported(kernel)) return NULL;
    switch (kernel) {
    case ARBOR_DOT_PORTABLE: return arbor_dot_portable;
#if ARBOR_X86
    case ARBOR_DOT_AVX2: return arbor_dot_avx2;
    case ARBOR_DOT_AVX512: return arbor_dot_avx512;
#endif
    default: return NULL;
    }
}

arbor_dot_kernel arbor_dot_best(void) {
    if (arbor_dot_supported(ARBOR_DOT_AVX512)) return ARBOR_DOT_AVX512;
    if (arbor_dot_supported(ARBOR_DOT_AVX2)) return ARBOR_DOT_AVX2;
    return ARBOR_DOT_PORTABLE;
}

/// The kernel of `arbor_dot`; NULL until first use (then `arbor_dot_best()`, or a forced one).
static _Atomic(arbor_dot_fn) arbor_selected = NULL;

static arbor_dot_fn arbor_selected_function(void) {
    arbor_dot_fn f = atomic_load_explicit(&arbor_selected, memory_order_relaxed);
    if (f) return f;
    arbor_dot_fn best = arbor_dot_function(arbor_dot_best());
    arbor_dot_fn expected = NULL;
    // Keeps a kernel forced (or chosen) by another thread meanwhile.
    if (atomic_compare_exchange_strong_explicit(&arbor_selected, &expected, best, memory_order_relaxed,
                                                memory_order_relaxed)) {
        return best;
    }
    return expected;
}

float arbor_dot(const float *a, const float *b, size_t n) { return arbor_selected_function()(a, b, n); }

arbor_dot_kernel arbor_dot_selected(void) {
    arbor_dot_fn f = arbor_selected_function();
    for (int k = 0; k < ARBOR_DOT_KERNEL_COUNT; k++) {
        if (arbor_dot_function((arbor_dot_kernel)k) == f) return (arbor_dot_kernel)k;
    }
    return ARBOR_DOT_PORTABLE;  // unreachable: only table functions are ever stored
}

int arbor_dot_force(arbor_dot_kernel kernel) {
    arbor_dot_fn f = arbor_dot_function(kernel);
    if (!f) return -1;
    atomic_store_explicit(&arbor_selected, f, memory_order_relaxed);
    return 0;
}

const char *arbor_dot_kernel_name(arbor_dot_kernel kernel) {
    switch (kernel) {
    case ARBOR_DOT_PORTABLE: return "portable";
    case ARBOR_DOT_AVX2: return "avx2";
    case ARBOR_DOT_AVX512: return "avx512";
    default: return "invalid";
    }
}

// MARK: - Batched form

static size_t arbor_prefetch_window(void) {
    static size_t window = 0;
    if (!window) {
        const char *e = getenv("ARBOR_PREFETCH_ROWS");
        window = e ? (size_t)atoi(e) : 1;
        if (window < 1) window = 1;
    }
    return window;
}

void arbor_dot_batch(arbor_dot_fn fn, const float *query, const float *base, size_t stride,
                     const int32_t *rows, size_t count, size_t n, float *out) {
    if (!fn) fn = arbor_selected_function();
    const size_t bytes = n * sizeof(float);
    const size_t window = arbor_prefetch_window();
    for (size_t r = 1; r < count && r < window; r++) {
        const char *row = (const char *)(base + (size_t)rows[r] * stride);
        for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(row + off, 0, 3);
    }
    for (size_t r = 0; r < count; r++) {
        if (r + window < count) {
            const char *next = (const char *)(base + (size_t)rows[r + window] * stride);
            for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(next + off, 0, 3);
        }
        out[r] = fn(query, base + (size_t)rows[r] * stride, n);
    }
}

void arbor_prefetch(const void *address, size_t bytes) {
    const char *p = (const char *)address;
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
}

void arbor_dot_rows(const float *query, const float *base, size_t count, size_t n, float *out) {
    switch (arbor_dot_selected()) {
#if ARBOR_X86
    case ARBOR_DOT_AVX512: arbor_dot_rows_avx512(query, base, count, n, out); return;
    case ARBOR_DOT_AVX2: arbor_dot_rows_avx2(query, base, count, n, out); return;
#endif
    default: arbor_dot_rows_portable(query, base, count, n, out); return;
    }
}
