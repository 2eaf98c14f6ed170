// SPDX-License-Identifier: Apache-2.0
#include "buf_ring.hpp"

#include <cerrno>

#include "register.hpp"
#include "ring_atomics.hpp"
#include "sys.hpp"

namespace luring::uring {

namespace {

constexpr std::size_t kPage = 4096;

std::size_t page_round(std::size_t n) { return (n + kPage - 1) & ~(kPage - 1); }

// Entry `e` names buffer `bid`. Field by field: entry 0's resv is the ring's tail.
void fill_entry(Buf& e, char* addr, std::uint32_t len, std::uint16_t bid) {
    e.addr = reinterpret_cast<std::uintptr_t>(addr);
    e.len = len;
    e.bid = bid;
}

}  // namespace

int BufRing::setup(const Ring& ring, std::uint16_t bgid, std::uint32_t count,
                   std::uint32_t size) noexcept {
    if (active()) return -EBUSY;
    if (!ring.is_open()) return -EBADF;
    if (count == 0 || count > kMaxCount || (count & (count - 1)) != 0) return -EINVAL;
    if (size == 0 || size > kMaxSize) return -EINVAL;
    void* entries = nullptr;
    void* data = nullptr;
    const std::size_t entries_len = page_round(std::size_t{count} * sizeof(Buf));
    const std::size_t data_len = page_round(std::size_t{count} * size);
    int ret = sys::mmap_anonymous(&entries, entries_len);
    if (ret < 0) return ret;
    ret = sys::mmap_anonymous(&data, data_len);
    if (ret < 0) {
        sys::munmap(entries, entries_len);
        return ret;
    }
    auto* bufs = static_cast<Buf*>(entries);
    auto* bytes = static_cast<char*>(data);
    for (std::uint32_t i = 0; i < count; ++i) {
        fill_entry(bufs[i], bytes + std::size_t{i} * size, size, static_cast<std::uint16_t>(i));
    }
    // Every buffer is the kernel's from the start; the registration publishes the tail.
    bufs[0].resv = static_cast<std::uint16_t>(count);
    BufReg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(entries);
    reg.ring_entries = count;
    reg.bgid = bgid;
    ret = register_buf_ring(ring, reg);
    if (ret < 0) {
        sys::munmap(data, data_len);
        sys::munmap(entries, entries_len);
        return ret;
    }
    entries_ = bufs;
    data_ = bytes;
    entries_len_ = entries_len;
    data_len_ = data_len;
    mask_ = count - 1;
    size_ = size;
    tail_ = static_cast<std::uint16_t>(count);
    bgid_ = bgid;
    return 0;
}

void BufRing::recycle(std::uint32_t bid) noexcept {
    if (!active() || bid > mask_) return;
    fill_entry(entries_[tail_ & mask_], data_ + std::size_t{bid} * size_, size_,
               static_cast<std::uint16_t>(bid));
    ++tail_;
    atomics::store_release_u16(&entries_[0].resv, tail_);
}

void BufRing::release(const Ring& ring, bool unregister) noexcept {
    if (!active()) return;
    if (unregister && ring.is_open()) unregister_buf_ring(ring, bgid_);
    sys::munmap(data_, data_len_);
    sys::munmap(entries_, entries_len_);
    entries_ = nullptr;
    data_ = nullptr;
    mask_ = 0;
    size_ = 0;
    tail_ = 0;
}

}  // namespace luring::uring
