/* SPDX-License-Identifier: MIT */
/*
 * fmt.c — poolsim's own small formatter, so the core needs no C library.
 *
 * Supports what the reports use: %% %c %s %.*s %d %i %u %x %X %p with the
 * flags '-' and '0', a width (digits or *), and the length modifiers l, ll
 * and z. Output is always NUL-terminated and truncated to the buffer.
 */
#include "core.h"

typedef struct fmt_out {
    char *buf;
    size_t cap, len;
} fmt_out;

static void fmt_put(fmt_out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void fmt_pad(fmt_out *o, char c, int n)
{
    while (n-- > 0)
        fmt_put(o, c);
}

static void fmt_str(fmt_out *o, const char *s, int prec, int width, bool left)
{
    int n = 0;
    if (!s)
        s = "(null)";
    while ((prec < 0 || n < prec) && s[n])
        n++;
    if (!left)
        fmt_pad(o, ' ', width - n);
    for (int i = 0; i < n; i++)
        fmt_put(o, s[i]);
    if (left)
        fmt_pad(o, ' ', width - n);
}

static void fmt_num(fmt_out *o, uint64_t v, bool neg, unsigned base, bool upper, int width, bool left,
                    bool zero)
{
    char tmp[24];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    int len = n + (neg ? 1 : 0);
    if (!left && !zero)
        fmt_pad(o, ' ', width - len);
    if (neg)
        fmt_put(o, '-');
    if (!left && zero)
        fmt_pad(o, '0', width - len);
    while (n)
        fmt_put(o, tmp[--n]);
    if (left)
        fmt_pad(o, ' ', width - len);
}

size_t poolsim__vfmt(char *buf, size_t cap, const char *fmt, va_list ap)
{
    fmt_out o = {buf, cap, 0};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            fmt_put(&o, *f);
            continue;
        }
        bool left = false, zero = false;
        int width = 0, prec = -1, lng = 0;
        for (f++; *f == '-' || *f == '0'; f++) {
            if (*f == '-')
                left = true;
            else
                zero = true;
        }
        if (*f == '*') {
            width = va_arg(ap, int);
            if (width < 0) {
                left = true;
                width = -width;
            }
            f++;
        } else {
            while (*f >= '0' && *f <= '9')
                width = width * 10 + (*f++ - '0');
        }
        if (*f == '.') {
            f++;
            prec = 0;
            if (*f == '*') {
                prec = va_arg(ap, int);
                f++;
            } else {
                while (*f >= '0' && *f <= '9')
                    prec = prec * 10 + (*f++ - '0');
            }
        }
        for (; *f == 'l' || *f == 'z'; f++)
            lng = *f == 'z' ? 3 : lng + 1;
        switch (*f) {
        case 'c':
            fmt_pad(&o, ' ', left ? 0 : width - 1);
            fmt_put(&o, (char)va_arg(ap, int));
            fmt_pad(&o, ' ', left ? width - 1 : 0);
            break;
        case 's':
            fmt_str(&o, va_arg(ap, const char *), prec, width, left);
            break;
        case 'd':
        case 'i': {
            int64_t v = lng == 0   ? va_arg(ap, int)
                        : lng == 1 ? va_arg(ap, long)
                        : lng == 2 ? va_arg(ap, long long)
                                   : (int64_t)(intptr_t)va_arg(ap, size_t);
            uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
            fmt_num(&o, mag, v < 0, 10, false, width, left, zero);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            uint64_t v = lng == 0   ? va_arg(ap, unsigned)
                         : lng == 1 ? va_arg(ap, unsigned long)
                         : lng == 2 ? va_arg(ap, unsigned long long)
                                    : va_arg(ap, size_t);
            fmt_num(&o, v, false, *f == 'u' ? 10 : 16, *f == 'X', width, left, zero);
            break;
        }
        case 'p':
            fmt_put(&o, '0');
            fmt_put(&o, 'x');
            fmt_num(&o, (uintptr_t)va_arg(ap, void *), false, 16, false, (int)sizeof(void *) * 2, false,
                    true);
            break;
        case '%':
            fmt_put(&o, '%');
            break;
        case '\0':
            f--;
            break;
        default:
            fmt_put(&o, '%');
            fmt_put(&o, *f);
            break;
        }
    }
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

size_t poolsim__fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = poolsim__vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

void poolsim__tag_text(uint32_t tag, char out[5])
{
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)(tag >> (8 * i));
        out[i] = (c >= 0x20 && c <= 0x7E) ? (char)c : (c == 0 ? ' ' : '.');
    }
    out[4] = '\0';
}

bool poolsim__same_text(const char *a, const char *b)
{
    if (a == b)
        return true;
    if (!a || !b)
        return false;
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}
