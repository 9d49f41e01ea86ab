// CArborBLASCore: makes OpenBLAS use a kernel the CPU can run at full width when OpenBLAS's own CPU
// detection fell back to an old generic one.
//
// Why: an OpenBLAS built with DYNAMIC_ARCH picks its kernels (its "core") at load time from the CPU
// model number. A release that predates the CPU does not know the model and falls back to Prescott's
// SSE3 kernels. Seen here: Debian's OpenBLAS 0.3.21 on an "Intel(R) Xeon(R) Processor" of family 6,
// model 207 (AVX-512) runs Prescott's SGEMM at 24 GFLOP/s on one core, its SkylakeX kernel at 117-227.
//
// What: `arbor_openblas_select_core` looks at the core OpenBLAS chose and at the CPU's features
// (`__builtin_cpu_supports`, which checks that the OS saves the vector state too). Only when the core
// is one of the generic pre-AVX2 fallbacks and the CPU has AVX2 + FMA does it switch OpenBLAS to
// SkylakeX (with AVX-512 F, BW, VL, DQ and CD) or Haswell (AVX2 + FMA), through OpenBLAS's own
// `gotoblas_dynamic_quit` / `gotoblas_dynamic_init` with `OPENBLAS_CORETYPE` set for that call only.
// A user's `OPENBLAS_CORETYPE` is always respected (nothing is changed). The choice is a pure function
// of the CPU's features and the core OpenBLAS reports: never of timing or load.
//
// Symbols are looked up at run time (dlsym), so a BLAS that is not OpenBLAS, or an OpenBLAS built for
// one fixed core, is left alone.
//
// Thread safety: call it once, before any BLAS routine has run in the process and while no other
// thread calls BLAS or reads the environment (ArborMath calls it from its one-time BLAS set-up).

#ifndef CARBORBLASCORE_H
#define CARBORBLASCORE_H

#ifdef __cplusplus
extern "C" {
#endif

/// What `arbor_openblas_select_core` did.
typedef enum arbor_blas_core_outcome {
    /// OpenBLAS's own choice was kept: it is not a generic fallback, or the CPU has nothing better.
    ARBOR_BLAS_CORE_KEPT = 0,
    /// OpenBLAS now runs the kernels named in `after` instead of the fallback named in `before`
    /// (`after` may name an older core than asked for, e.g. Haswell from a build without AVX-512).
    ARBOR_BLAS_CORE_UPGRADED = 1,
    /// `OPENBLAS_CORETYPE` is set: the user's choice stands.
    ARBOR_BLAS_CORE_USER_CHOICE = 2,
    /// The BLAS in the process has no dynamic core selection (not OpenBLAS, or built for one core).
    ARBOR_BLAS_CORE_NOT_DYNAMIC = 3,
    /// OpenBLAS refused the better core (it was built without it); its first choice was restored.
    ARBOR_BLAS_CORE_REFUSED = 4,
} arbor_blas_core_outcome;

/// Checks OpenBLAS's core and upgrades a generic fallback (see above). `before` and `after` receive
/// the core names (NUL-terminated, at most `capacity - 1` characters; either may be NULL).
/// Not thread-safe: see the file comment.
arbor_blas_core_outcome arbor_openblas_select_core(char *before, char *after, int capacity);

#ifdef __cplusplus
}
#endif

#endif
