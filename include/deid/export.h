/* libdeid: symbol visibility and attribute macros. */
#ifndef DEID_EXPORT_H
#define DEID_EXPORT_H

#if defined(DEID_STATIC)
#define DEID_API
#elif defined(_WIN32)
#if defined(DEID_BUILDING)
#define DEID_API __declspec(dllexport)
#else
#define DEID_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define DEID_API __attribute__((visibility("default")))
#else
#define DEID_API
#endif

/* Results whose neglect would let PHI through (apply, write) must be checked. */
#if defined(__GNUC__) && (__GNUC__ >= 4)
#define DEID_NODISCARD __attribute__((warn_unused_result))
#else
#define DEID_NODISCARD
#endif

#endif
