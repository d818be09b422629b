/*
 * JDK 25's -XX:+PrintAssembly looks for hsdis's decode_instructions_virtual; Debian's libhsdis0-fcml (apt install
 * libhsdis0-fcml) exports only the older decode_instructions. This shim maps the one onto the other (the code buffer
 * the JVM passes is the code itself, so its address is the start). Built and used by asm.sh.
 */
#include <dlfcn.h>
#include <stdint.h>

typedef void *(*event_callback)(void *, const char *, void *);
typedef int (*printf_callback)(void *, const char *, ...);
typedef void *(*decode_fn)(void *, void *, event_callback, void *, printf_callback, void *, const char *);

void *decode_instructions_virtual(uintptr_t start_va, uintptr_t end_va, unsigned char *buffer, uintptr_t length,
                                  event_callback event, void *event_stream, printf_callback print, void *print_stream,
                                  const char *options, int newline) {
    static decode_fn decode;
    if (!decode) {
        void *library = dlopen("libhsdis.so.0", RTLD_NOW);
        decode = library ? (decode_fn) dlsym(library, "decode_instructions") : 0;
        if (!decode) {
            return 0;
        }
    }
    return decode(buffer, buffer + length, event, event_stream, print, print_stream, options);
}
