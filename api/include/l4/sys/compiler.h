/*
 * l4/sys/compiler.h: compiler glue of the L4Re C API (L4Re's names).
 *
 * Part of l4re_ma, L4Re's memory allocator interface rebuilt for Linux. Valid
 * C99 and C++.
 */
#ifndef L4_SYS_COMPILER_H__
#define L4_SYS_COMPILER_H__

#ifdef __cplusplus
# define EXTERN_C_BEGIN extern "C" {
# define EXTERN_C_END   }
# define EXTERN_C       extern "C"
# define L4_NOTHROW     noexcept
# define L4_INLINE      inline
#else
# define EXTERN_C_BEGIN
# define EXTERN_C_END
# define EXTERN_C
# define L4_NOTHROW     /* C has no exceptions */
# define L4_INLINE      static inline
#endif

#ifndef __BEGIN_DECLS
# define __BEGIN_DECLS EXTERN_C_BEGIN
# define __END_DECLS   EXTERN_C_END
#endif

/* Calling convention marker; the default C convention on Linux. */
#define L4_CV
#define L4_EXPORT        __attribute__((visibility("default")))
#define L4_HIDDEN        __attribute__((visibility("hidden")))
#define L4_NORETURN      __attribute__((noreturn))
#define L4_LIKELY(x)     __builtin_expect(!!(x), 1)
#define L4_UNLIKELY(x)   __builtin_expect(!!(x), 0)
#define L4_DEPRECATED(s) __attribute__((deprecated(s)))

#endif /* L4_SYS_COMPILER_H__ */
