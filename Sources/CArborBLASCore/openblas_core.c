// See include/CArborBLASCore.h.
#define _GNU_SOURCE
#include "CArborBLASCore.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef char *(*corename_fn)(void);
typedef void (*void_fn)(void);

static void copy_name(char *out, int capacity, const char *name) {
    if (out == NULL || capacity <= 0) return;
    strncpy(out, name ? name : "unknown", (size_t)capacity - 1);
    out[capacity - 1] = 0;
}

/// OpenBLAS's x86 cores without AVX2 + FMA kernels: what it falls back to on a CPU it does not know.
static int is_generic_fallback(const char *core) {
    static const char *const names[] = {
        "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Sandybridge", "Katmai",
        "Coppermine", "Northwood", "Banias", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Bobcat",
        "Bulldozer", "Piledriver", "Unknown",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(core, names[i]) == 0) return 1;
    }
    return 0;
}

/// The best OpenBLAS core name this CPU can run, or NULL when it has no AVX2 + FMA.
static const char *best_core_for_cpu(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd")) {
        return "SkylakeX";
    }
    return "Haswell";
#else
    return NULL;
#endif
}

/// Re-runs OpenBLAS's core set-up with OPENBLAS_CORETYPE = `core` for this call only.
static void reinit_with(void_fn quit, void_fn init, const char *core) {
    setenv("OPENBLAS_CORETYPE", core, 1);
    quit();
    init();
    unsetenv("OPENBLAS_CORETYPE");
}

arbor_blas_core_outcome arbor_openblas_select_core(char *before, char *after, int capacity) {
    corename_fn corename = (corename_fn)dlsym(RTLD_DEFAULT, "openblas_get_corename");
    const char *current = corename ? corename() : NULL;
    copy_name(before, capacity, current);
    copy_name(after, capacity, current);
    if (getenv("OPENBLAS_CORETYPE") != NULL) return ARBOR_BLAS_CORE_USER_CHOICE;
    void_fn quit = (void_fn)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void_fn init = (void_fn)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (corename == NULL || current == NULL || quit == NULL || init == NULL) return ARBOR_BLAS_CORE_NOT_DYNAMIC;
    if (!is_generic_fallback(current)) return ARBOR_BLAS_CORE_KEPT;
    const char *target = best_core_for_cpu();
    if (target == NULL) return ARBOR_BLAS_CORE_KEPT;
    char original[64];
    copy_name(original, sizeof original, current);
    reinit_with(quit, init, target);
    const char *now = corename();
    if (now == NULL || is_generic_fallback(now)) {
        reinit_with(quit, init, original);  // the build has no such kernels: back to OpenBLAS's choice
        copy_name(after, capacity, corename());
        return ARBOR_BLAS_CORE_REFUSED;
    }
    copy_name(after, capacity, now);
    return ARBOR_BLAS_CORE_UPGRADED;
}
