#include <cblas.h>
/* Provided by OpenBLAS; declared here because not every cblas.h declares them. */
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);
extern char *openblas_get_corename(void);
