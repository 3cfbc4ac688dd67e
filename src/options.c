/* SPDX-License-Identifier: MIT */
/*
 * options.c — the only options table: names, defaults, meanings, parsing.
 *
 * The table is generated from POOLSIM_OPTIONS in poolsim.h, so a name, its
 * struct field and its environment variable (POOLSIM_<NAME>) cannot drift.
 * A driver build, which has no environment, sets defaults at compile time
 * with -DPOOLSIM_DEFAULT_<NAME>=value (see README, "Options").
 */
#include "core.h"

#define OPT_ROW(name, type, kind, def, help) {#name, offsetof(poolsim_options, name), PSIM_OPT_##kind, help},

const psim_option_desc poolsim__option_table[] = {POOLSIM_OPTIONS(OPT_ROW)};
const size_t poolsim__option_count = PSIM_COUNTOF(poolsim__option_table);

#define OPT_DEFAULT(name, type, kind, def, help) opts->name = (type)(def);
void poolsim_options_default(poolsim_options *opts)
{
    if (!opts)
        return;
    psim_memset(opts, 0, sizeof *opts);
    POOLSIM_OPTIONS(OPT_DEFAULT)
}

bool poolsim__text_fits(const char *s, size_t max)
{
    for (size_t n = 0; s && s[n]; n++)
        if (n == max)
            return false;
    return true;
}

const char *poolsim__options_check(const poolsim_options *o)
{
    if (o->family > POOLSIM_FAMILY_RETAIL)
        return "family";
    if (o->tag_check > POOLSIM_TAG_CHECK_PROTECTED)
        return "tag_check";
    if (o->leak_code != 0x60 && o->leak_code != 0x62)
        return "leak_code";
    if (o->quarantine_blocks > POOLSIM_QUARANTINE_BLOCKS_MAX) /* each shard's ring holds this many */
        return "quarantine_blocks";
    if (o->uninit_byte > 0xFF)
        return "uninit_byte";
    if (o->footer_bytes > 64) /* a small block's slot stays within a page (tracker.c) */
        return "footer_bytes";
    if (o->quarantine_check > PSIM_SIZE_MAX) /* no block is bigger */
        return "quarantine_check";
    if (o->irql_history > 64) /* each thread keeps its last 64 transitions (irql.c) */
        return "irql_history";
    if (o->synch_level != 12 && o->synch_level != 13) /* wdk-semantics.md §4.1: the x64 headers say 12 or 13 */
        return "synch_level";
    /* A GFlags size class: a multiple of the granularity from 2 granules to a page less one (§5.1). */
    if (o->special_pool_size &&
        (o->special_pool_size % PSIM_GRAN || o->special_pool_size < 2 * PSIM_GRAN ||
         o->special_pool_size > PSIM_PAGE - PSIM_GRAN))
        return "special_pool_size";
    if (o->special_pool_slots > PSIM_SPECIAL_SLOTS_MAX)
        return "special_pool_slots";
    if (!o->special_pool_tags)
        return "special_pool_tags";
    if (!poolsim__text_fits(o->fault_tags, PSIM_FAULT_TAGS_MAX)) /* fault.c keeps a copy of this size */
        return "fault_tags";
    if (!o->driver_name)
        return "driver_name";
    return NULL;
}

/* ---- Environment parsing ------------------------------------------------ */

static bool opt_streq(const char *a, const char *b)
{
    while (*a && *b) {
        char x = *a++, y = *b++;
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* Parses a value of an option of kind `kind`: a word where the kind has
 * words, otherwise a number with an optional 0x prefix and K/M/G suffix. */
static bool opt_parse(unsigned kind, const char *s, uint64_t *out)
{
    static const struct {
        unsigned kind;
        const char *word;
        uint64_t value;
    } words[] = {{PSIM_OPT_BOOL, "on", 1},
                 {PSIM_OPT_BOOL, "off", 0},
                 {PSIM_OPT_BOOL, "true", 1},
                 {PSIM_OPT_BOOL, "false", 0},
                 {PSIM_OPT_BOOL, "yes", 1},
                 {PSIM_OPT_BOOL, "no", 0},
                 {PSIM_OPT_FAMILY, "verifier", POOLSIM_FAMILY_VERIFIER},
                 {PSIM_OPT_FAMILY, "retail", POOLSIM_FAMILY_RETAIL},
                 {PSIM_OPT_TAGCHECK, "strict", POOLSIM_TAG_CHECK_STRICT},
                 {PSIM_OPT_TAGCHECK, "protected", POOLSIM_TAG_CHECK_PROTECTED}};
    for (size_t i = 0; i < PSIM_COUNTOF(words); i++) {
        if (words[i].kind == kind && opt_streq(s, words[i].word)) {
            *out = words[i].value;
            return true;
        }
    }
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    uint64_t v = 0;
    int digits = 0;
    for (; *s; s++, digits++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            break;
        if (v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    if (!digits)
        return false;
    unsigned shift = 0;
    if (kind == PSIM_OPT_U64 || kind == PSIM_OPT_U32) {
        if (*s == 'k' || *s == 'K')
            shift = 10;
        else if (*s == 'm' || *s == 'M')
            shift = 20;
        else if (*s == 'g' || *s == 'G')
            shift = 30;
    }
    if (shift) {
        if (v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
        s++;
    }
    if (*s || (kind == PSIM_OPT_BOOL && v > 1))
        return false;
    *out = v;
    return true;
}

int poolsim_options_from_env(poolsim_options *opts)
{
    /* String values live here so an option can point at them; each call of
     * this function uses the next of a few buffers. Call it at setup time. */
    static char strings[8][128];
    static unsigned nstr;
    int bad = 0;
    if (!opts || !(poolsim__prim_caps() & POOLSIM__CAP_ENVIRONMENT))
        return 0;
    for (size_t i = 0; i < poolsim__option_count; i++) {
        const psim_option_desc *d = &poolsim__option_table[i];
        char var[64] = "POOLSIM_";
        size_t k = 8;
        for (const char *n = d->name; *n && k + 1 < sizeof var; n++)
            var[k++] = (*n >= 'a' && *n <= 'z') ? (char)(*n - 'a' + 'A') : *n;
        var[k] = '\0';
        char val[128];
        long len = poolsim__prim_getenv(var, val, sizeof val);
        if (len < 0)
            continue;
        char *field = (char *)opts + d->offset;
        uint64_t v;
        if ((size_t)len >= sizeof val) {
            poolsim__outf("poolsim: ignoring %s: its value is longer than %u characters\n", var,
                          (unsigned)sizeof val - 1);
            bad++;
        } else if (d->kind == PSIM_OPT_STR) {
            char *dst = strings[nstr++ % PSIM_COUNTOF(strings)];
            psim_memcpy(dst, val, sizeof val);
            *(const char **)(void *)field = dst;
        } else if (!opt_parse(d->kind, val, &v) || (d->kind != PSIM_OPT_U64 && v > UINT32_MAX)) {
            poolsim__outf("poolsim: ignoring %s=\"%s\": not a valid value for option %s\n", var, val,
                          d->name);
            bad++;
        } else if (d->kind == PSIM_OPT_U64) {
            *(uint64_t *)(void *)field = v;
        } else {
            *(uint32_t *)(void *)field = (uint32_t)v;
        }
    }
    return bad;
}
