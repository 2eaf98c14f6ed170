// SPDX-License-Identifier: Apache-2.0
// seccomp_exec: run a command with the io_uring system calls failing, the way a container's
// seccomp profile makes them fail, so "io_uring unavailable" paths are tested for real.
//
//   seccomp_exec [--syscalls setup,enter,register] [--register-op N] ERRNO -- cmd args...
//
// ERRNO is a name (ENOSYS, EPERM, EOPNOTSUPP, EINVAL, ENOMEM, EACCES) or a number. By
// default io_uring_setup, io_uring_enter and io_uring_register all fail with it;
// --syscalls picks a subset. --register-op N makes only io_uring_register with opcode N
// fail (e.g. 8, IORING_REGISTER_PROBE, with EINVAL looks like a kernel before 5.6);
// setup and enter then work unless --syscalls names them too.
//
// Needs no privilege: PR_SET_NO_NEW_PRIVS lets any process install a filter. Exits 77
// (meson's "skip") where seccomp filters are unavailable, 127 if the exec fails, 1 on
// usage errors.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

namespace {

constexpr int kExitSkip = 77;

#if defined(__x86_64__)
constexpr std::uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t kArch = AUDIT_ARCH_AARCH64;
#elif defined(__i386__)
constexpr std::uint32_t kArch = AUDIT_ARCH_I386;
#elif defined(__arm__)
constexpr std::uint32_t kArch = AUDIT_ARCH_ARM;
#elif defined(__riscv) && __riscv_xlen == 64
constexpr std::uint32_t kArch = AUDIT_ARCH_RISCV64;
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr std::uint32_t kArch = AUDIT_ARCH_PPC64LE;
#elif defined(__s390x__)
constexpr std::uint32_t kArch = AUDIT_ARCH_S390X;
#else
constexpr std::uint32_t kArch = 0;  // unknown here: the launcher skips
#endif

struct ErrnoName {
    const char* name;
    int value;
};

constexpr ErrnoName kErrnos[] = {
    {"ENOSYS", ENOSYS}, {"EPERM", EPERM},   {"EOPNOTSUPP", EOPNOTSUPP},
    {"EINVAL", EINVAL}, {"ENOMEM", ENOMEM}, {"EACCES", EACCES},
};

int parse_errno(const char* text) {
    for (const ErrnoName& e : kErrnos) {
        if (std::strcmp(text, e.name) == 0) return e.value;
    }
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (end == text || *end != 0 || v <= 0 || v > 4095) return -1;  // SECCOMP_RET_DATA
    return static_cast<int>(v);
}

void usage() {
    std::fprintf(stderr,
                 "usage: seccomp_exec [--syscalls setup,enter,register] [--register-op N] "
                 "ERRNO -- cmd args...\n");
}

// The low 32 bits of syscall argument `n` in struct seccomp_data.
constexpr std::uint32_t arg_low_offset(int n) {
    const std::uint32_t base = offsetof(struct seccomp_data, args) + 8U * n;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return base + 4;
#else
    return base;
#endif
}

sock_filter stmt(std::uint16_t code, std::uint32_t k) { return BPF_STMT(code, k); }
sock_filter jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf) {
    return BPF_JUMP(code, k, jt, jf);
}

}  // namespace

int main(int argc, char** argv) {
    bool want_setup = true, want_enter = true, want_register = true;
    bool syscalls_given = false;
    long register_op = -1;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string_view arg(argv[i]);
        if (arg == "--syscalls" && i + 1 < argc) {
            const std::string_view list(argv[++i]);
            want_setup = list.find("setup") != std::string_view::npos;
            want_enter = list.find("enter") != std::string_view::npos;
            want_register = list.find("register") != std::string_view::npos;
            syscalls_given = true;
        } else if (arg == "--register-op" && i + 1 < argc) {
            register_op = std::strtol(argv[++i], nullptr, 10);
        } else {
            break;
        }
    }
    if (register_op >= 0 && !syscalls_given) {
        want_setup = false;
        want_enter = false;
    }
    if (i + 2 >= argc || std::strcmp(argv[i + 1], "--") != 0) {
        usage();
        return 1;
    }
    const int err = parse_errno(argv[i]);
    if (err < 0) {
        std::fprintf(stderr, "seccomp_exec: bad errno '%s'\n", argv[i]);
        usage();
        return 1;
    }
    char** command = argv + i + 2;
    if (kArch == 0) {
        std::fprintf(stderr, "seccomp_exec: no AUDIT_ARCH for this architecture, skipping\n");
        return kExitSkip;
    }

    const std::uint32_t deny =
        SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(err) & SECCOMP_RET_DATA);
    // Layout: check the arch (another ABI passes untouched), load the number, then one
    // "jeq nr -> deny" per syscall; io_uring_register may first test its opcode.
    std::vector<sock_filter> prog;
    prog.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    prog.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0));
    prog.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    prog.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
    if (want_setup) {
        prog.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1));
        prog.push_back(stmt(BPF_RET | BPF_K, deny));
    }
    if (want_enter) {
        prog.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 0, 1));
        prog.push_back(stmt(BPF_RET | BPF_K, deny));
    }
    if (want_register) {
        if (register_op < 0) {
            prog.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 0, 1));
            prog.push_back(stmt(BPF_RET | BPF_K, deny));
        } else {
            // Not register: skip the 4 opcode instructions. The opcode is argument 1;
            // drop IORING_REGISTER_USE_REGISTERED_RING (bit 31) before comparing.
            prog.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 0, 4));
            prog.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, arg_low_offset(1)));
            prog.push_back(stmt(BPF_ALU | BPF_AND | BPF_K, 0x7fffffffU));
            prog.push_back(
                jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(register_op), 0, 1));
            prog.push_back(stmt(BPF_RET | BPF_K, deny));
        }
    }
    prog.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));

    sock_fprog fprog{};
    fprog.len = static_cast<unsigned short>(prog.size());
    fprog.filter = prog.data();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        std::fprintf(stderr, "seccomp_exec: PR_SET_NO_NEW_PRIVS: %s, skipping\n",
                     std::strerror(errno));
        return kExitSkip;
    }
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) != 0) {
        std::fprintf(stderr, "seccomp_exec: no seccomp filters here (%s), skipping\n",
                     std::strerror(errno));
        return kExitSkip;
    }
    execvp(command[0], command);
    std::fprintf(stderr, "seccomp_exec: cannot run %s: %s\n", command[0], std::strerror(errno));
    return 127;
}
