//! Transparent huge pages for large weight buffers. Decode streams hundreds of
//! MiB of weights per token from memory that is touched in no particular
//! order (the routed experts); with 4 KiB pages nearly every 4 KiB of a
//! matrix costs a TLB miss and a page walk, which on a virtual machine walks
//! two page tables. 2 MiB pages cut those walks 512-fold. Measured on the dev
//! machine (KVM guest, 1 thread, Q4_K matvecs over random experts of a 226 MiB
//! working set): 15.6 → 17.5 GB/s.
//!
//! Linux gives an anonymous mapping huge pages when it is advised
//! (`MADV_HUGEPAGE`, honoured when /sys/kernel/mm/transparent_hugepage/enabled
//! is `always` or `madvise`) and its pages are faulted in afterwards. A buffer
//! from a JavaScript engine's allocator has usually been zero-filled already
//! (4 KiB pages in place), so `advise` also drops the covered pages
//! (`MADV_DONTNEED`): the next touch faults them in again, now huge, and they
//! read as zeros. So it is for fresh zeroed buffers only, before they are
//! filled. Elsewhere, or where the kernel refuses, the buffer keeps its small
//! pages and works the same.
const std = @import("std");
const builtin = @import("builtin");

pub const huge_page_bytes: usize = 2 << 20;

/// Advises the kernel to back the whole 2 MiB pages inside `bytes` with huge
/// pages and drops them, so they are faulted in again as huge pages: the
/// covered bytes read as zero afterwards (for a fresh zeroed buffer, nothing
/// changes). Returns how many bytes were covered (0 if none, or refused).
pub fn advise(bytes: []u8) usize {
    if (builtin.os.tag != .linux) return 0;
    const start = std.mem.alignForward(usize, @intFromPtr(bytes.ptr), huge_page_bytes);
    const end = std.mem.alignBackward(usize, @intFromPtr(bytes.ptr) + bytes.len, huge_page_bytes);
    if (end <= start) return 0;
    const p: [*]align(std.heap.page_size_min) u8 = @ptrFromInt(start);
    std.posix.madvise(p, end - start, std.posix.MADV.HUGEPAGE) catch return 0;
    std.posix.madvise(p, end - start, std.posix.MADV.DONTNEED) catch {
        @memset(p[0 .. end - start], 0);
    };
    return end - start;
}

test "huge_pages: advises only whole huge pages inside the buffer; small buffers are left alone" {
    const len = 3 * huge_page_bytes;
    const buf = try std.heap.page_allocator.alloc(u8, len);
    defer std.heap.page_allocator.free(buf);
    @memset(buf, 7);
    const covered = advise(buf);
    // Whole 2 MiB pages inside a 6 MiB buffer: 2 if it starts unaligned, 3 if aligned; 0 if the kernel has no THP.
    try std.testing.expect(covered == 0 or covered == 2 * huge_page_bytes or covered == 3 * huge_page_bytes);
    // The covered pages read as zero, the rest keeps its bytes.
    const start = std.mem.alignForward(usize, @intFromPtr(buf.ptr), huge_page_bytes) - @intFromPtr(buf.ptr);
    for (buf, 0..) |b, i| {
        const inside = covered > 0 and i >= start and i < start + covered;
        if (b != @as(u8, if (inside) 0 else 7)) return error.TestUnexpectedResult;
    }
    @memset(buf, 9);
    try std.testing.expectEqual(@as(u8, 9), buf[len - 1]);
    try std.testing.expectEqual(@as(usize, 0), advise(buf[1..4096]));
}
