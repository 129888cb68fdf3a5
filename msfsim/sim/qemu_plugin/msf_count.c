/* QEMU TCG plugin: count the guest instructions retired from entering msf_bench_begin to
 * entering msf_bench_end. Built with the host gcc against the QEMU 7.2 plugin API (version 1),
 * declared here because Debian's QEMU ships no plugin header.
 *
 * Arguments: begin=ADDR,end=ADDR,out=PATH[,budget=N]
 * Every translation block adds its instruction count inline when it starts; the callbacks on
 * the two marker instructions subtract the not-yet-executed part of their own block. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min, cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus, max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

#define MSF_UNSET UINT64_MAX
#define MSF_MARK_END_BIT 0x80000000u /* userdata: marker kind | instructions still to run */

static uint64_t total;
static uint64_t begin_addr, end_addr, budget = UINT64_MAX;
static uint64_t begin_at = MSF_UNSET, end_at = MSF_UNSET;
static int budget_hit;
static char out_path[4096];

static void write_result(void)
{
    FILE *f = fopen(out_path, "w");
    if (f == NULL)
        return;
    fprintf(f, "begin %llu\nend %llu\ntotal %llu\nbudget_hit %d\n",
            (unsigned long long)begin_at, (unsigned long long)end_at,
            (unsigned long long)total, budget_hit);
    fclose(f);
}

static void on_marker(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    uintptr_t u = (uintptr_t)userdata;
    uint64_t ahead = u & ~(uintptr_t)MSF_MARK_END_BIT; /* counted, not yet retired */
    uint64_t now = total - ahead;
    if (u & MSF_MARK_END_BIT) {
        if (end_at == MSF_UNSET)
            end_at = now;
    } else if (begin_at == MSF_UNSET) {
        begin_at = now;
    }
}

static void on_tb_budget(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    (void)userdata;
    if (total > budget) {
        budget_hit = 1;
        write_result();
        _exit(3);
    }
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &total, n);
    if (budget != UINT64_MAX)
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_budget, QEMU_PLUGIN_CB_NO_REGS, NULL);
    for (size_t i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t va = qemu_plugin_insn_vaddr(insn);
        if (va == begin_addr || va == end_addr) {
            uintptr_t u = (uintptr_t)(n - i) | (va == end_addr ? MSF_MARK_END_BIT : 0u);
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, (void *)u);
        }
    }
}

static void on_atexit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    write_result();
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; ++i) {
        const char *a = argv[i];
        if (strncmp(a, "begin=", 6) == 0)
            begin_addr = strtoull(a + 6, NULL, 0);
        else if (strncmp(a, "end=", 4) == 0)
            end_addr = strtoull(a + 4, NULL, 0);
        else if (strncmp(a, "budget=", 7) == 0)
            budget = strtoull(a + 7, NULL, 0);
        else if (strncmp(a, "out=", 4) == 0)
            snprintf(out_path, sizeof out_path, "%s", a + 4);
        else
            return -1;
    }
    if (out_path[0] == '\0' || begin_addr == 0 || end_addr == 0)
        return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
    return 0;
}
