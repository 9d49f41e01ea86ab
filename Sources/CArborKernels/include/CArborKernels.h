// CArborKernels: Arbor's float32 dot-product kernels (the HNSW graph's distances, the exact scan's batch-1 pass), chosen once by CPU features.
//
// Three kernels compute the same function, dot(a, b, n) = sum_{i < n} a[i] * b[i]:
//   - portable: plain C (separate multiply and add), vectorised by the compiler for the baseline ISA;
//   - avx2:     AVX2 + FMA intrinsics, 256-bit;
//   - avx512:   AVX-512F intrinsics, 512-bit.
// The avx2 and avx512 kernels use one summation order (64 fused multiply-add lanes, lane j holding
// the elements i with i % 64 == j in increasing i, then one fixed reduction tree), so they return
// bit-identical results for the same input. The portable kernel sums in the same lanes without fused
// multiply-add, so its last bits can differ from theirs (by a few units in the last place).
//
// Which kernel `arbor_dot` uses is decided once per process, on first use, from the CPU's features
// (`__builtin_cpu_supports`: avx512f first, then avx2 + fma, then portable), never by timing, so it
// is the same on every run on a given CPU model. `arbor_dot_force` replaces that choice.
//
// Alignment: none required anywhere (unaligned loads). Pointers may alias (they are only read).
// Thread safety: every function is safe to call from any thread at any time; the selected kernel is
// one atomic pointer (a force racing with dots makes each dot use either the old or the new kernel).

#ifndef CARBORKERNELS_H
#define CARBORKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A dot-product kernel. Values are stable (they may be stored).
typedef enum arbor_dot_kernel {
    /// Plain C, any CPU.
    ARBOR_DOT_PORTABLE = 0,
    /// AVX2 + FMA (x86-64 only).
    ARBOR_DOT_AVX2 = 1,
    /// AVX-512F (x86-64 only).
    ARBOR_DOT_AVX512 = 2,
} arbor_dot_kernel;

/// Number of kernels (valid values are 0 ..< ARBOR_DOT_KERNEL_COUNT).
#define ARBOR_DOT_KERNEL_COUNT 3

/// Signature of a dot-product kernel: a[0..<n] · b[0..<n].
typedef float (*arbor_dot_fn)(const float *a, const float *b, size_t n);

/// a[0..<n] · b[0..<n] with the selected kernel (see `arbor_dot_selected`). `n == 0` returns 0.
/// Shapes: `a` and `b` hold at least `n` floats each. Alignment: none. Thread-safe.
float arbor_dot(const float *a, const float *b, size_t n);

/// The function of `kernel`, or NULL when `kernel` is not a valid value or this CPU (and OS) cannot
/// run it. Calling the returned function is thread-safe and needs no alignment.
arbor_dot_fn arbor_dot_function(arbor_dot_kernel kernel);

/// 1 when this CPU (and OS) can run `kernel`, else 0 (also 0 for an invalid value). Thread-safe.
int arbor_dot_supported(arbor_dot_kernel kernel);

/// The best kernel this CPU supports (avx512, else avx2, else portable): a pure function of the
/// CPU's features, never of timing or load. Thread-safe.
arbor_dot_kernel arbor_dot_best(void);

/// The kernel `arbor_dot` and `arbor_dot_batch` use now: `arbor_dot_best()` unless
/// `arbor_dot_force` chose another. Thread-safe.
arbor_dot_kernel arbor_dot_selected(void);

/// Makes `kernel` the one `arbor_dot` and `arbor_dot_batch` use from now on, for the whole process.
/// Returns 0 on success, -1 (and changes nothing) when `kernel` is invalid or this CPU cannot run it.
/// Thread-safe (see the header comment); meant for tests and for a fixed, configured choice.
int arbor_dot_force(arbor_dot_kernel kernel);

/// Short lowercase name of `kernel` ("portable", "avx2", "avx512"), or "invalid". The string is static.
const char *arbor_dot_kernel_name(arbor_dot_kernel kernel);

/// One query against several rows of a row-major matrix, with the kernel `fn` (from
/// `arbor_dot_function`; NULL means the selected kernel):
///   out[r] = query[0..<n] · (base + rows[r] * stride)[0..<n]   for r in 0 ..< count.
/// Shapes: `query` holds `n` floats; each addressed row holds `n` floats (`stride >= n`, in floats);
/// `rows` and `out` hold `count` entries. Rows may repeat and come in any order. Each result equals
/// `fn(query, row, n)` bit for bit. The next row is prefetched while the current one is computed.
/// Alignment: none. Thread-safe (writes only `out`).
void arbor_dot_batch(arbor_dot_fn fn, const float *query, const float *base, size_t stride,
                     const int32_t *rows, size_t count, size_t n, float *out);

/// Hints the CPU to bring `bytes` bytes from `address` into cache (no effect on results).
void arbor_prefetch(const void *address, size_t bytes);

/// The portable kernel itself (always available), for reference and tests.
float arbor_dot_portable(const float *a, const float *b, size_t n);

/// One query against `count` consecutive rows of a row-major matrix (`count × n`, rows `n` floats
/// apart), with the selected kernel (see `arbor_dot_selected`):
///   out[r] = query[0..<n] · base[r * n ..< (r + 1) * n]   for r in 0 ..< count.
/// One streaming pass over the rows: the exact scan's batch-1 path (no per-row call through a
/// pointer). With AVX2 or the portable kernel each result equals `arbor_dot(query, row, n)` bit for
/// bit; the AVX-512 path scores four rows at a time with one accumulator per row and a shared
/// reduction, so its last bits may differ from `arbor_dot`'s. Either way a row's score is a fixed
/// function of its values and the query, wherever the row sits: equal rows score equally.
/// Alignment: none. Thread-safe (writes only `out`).
void arbor_dot_rows(const float *query, const float *base, size_t count, size_t n, float *out);

#ifdef __cplusplus
}
#endif

#endif
