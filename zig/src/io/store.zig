//! The expert store's native half: a fixed arena of I/O slots allocated once
//! at open (page-aligned, so O_DIRECT can read into it), and three ways to
//! fill a slot with a byte range of the model file:
//!
//!   uring  io_uring reads, several in flight, completions reaped when the
//!          caller waits for a slot (never blocking compute before that);
//!   pread  a fixed pool of reader threads doing pread(2);
//!   mmap   the file mapped read-only; a submit is madvise(WILLNEED) and a
//!          slot's data is the mapping itself (the page-cache baseline).
//!
//! At most `max_in_flight` reads are in the kernel (uring) or in a reader
//! thread (pread) at once, and of those at most half (at least one) may be
//! speculative (prefetches), so a read the caller needs never queues behind
//! more than that; further submits wait in a FIFO queue, and waiting for a
//! queued slot makes it a needed read at the front of the queue. `cancel` stops a read that is no longer wanted: a
//! queued one is dropped, one in the kernel gets IORING_OP_ASYNC_CANCEL, one
//! a reader thread has started finishes and is discarded. A cancelled slot is
//! never returned as data, and a submit into it waits until the kernel is done
//! with its memory.
//!
//! With O_DIRECT a read is widened to 4096-byte boundaries; the slot's data
//! then starts `offset % 4096` bytes in. A read that ends early (truncated
//! file), fails (EIO) or whose bytes do not hash to the expected checksum
//! marks the slot failed with an error naming the slot and offset: never
//! silent zeros. Which expert lives in which slot, and when a slot may be
//! reused, is decided on the TypeScript side (src/store/).
const std = @import("std");
const huge_pages = @import("../huge_pages.zig");
const lifetime = @import("../lifetime.zig");
const linux = std.os.linux;
const posix = std.posix;
const status = @import("../c_api/status.zig");
const checksum = @import("checksum.zig");

const Error = status.Error;

pub const direct_align = 4096;

/// uring: a speculative read at least this long is handed to the kernel's worker threads
/// (IOSQE_ASYNC) instead of being issued inline by the submitting thread, which otherwise spends
/// ~0.1 ms pinning and queueing a 1.6 MiB O_DIRECT read (bench/prediction.md, session 3). Shorter
/// reads stay inline: the hand-off adds latency and they cost little to issue.
pub const async_min_bytes = 256 << 10;

pub const Backend = enum(u32) { uring = 0, pread = 1, mmap = 2 };

/// How `emoe_store_open` opens the file and sizes the arena.
pub const Options = extern struct {
    /// Backend enum value.
    backend: u32,
    /// Number of slots in the arena.
    slot_count: u32,
    /// Bytes per slot (rounded up to 4096); must hold the largest read plus alignment slack.
    slot_bytes: u64,
    /// io_uring submission queue entries (uring), 1..4096.
    queue_depth: u32,
    /// Reader threads (pread), 1..64.
    threads: u32,
    /// 0: buffered; 1: O_DIRECT if the filesystem allows, else buffered; 2: O_DIRECT or fail.
    direct: u32,
    /// Fault injection for tests (0 none): 1 makes read number `fault_after` fail with EIO;
    /// 2 makes it come back short (half), which the store must complete by reading the rest.
    fault_mode: u32 = 0,
    /// 1-based index of the read (in submission order) that the fault hits; 0: every read.
    fault_after: u32 = 0,
    /// Most reads in flight at once; 0: queue_depth (uring) or threads (pread). Ignored by mmap.
    max_in_flight: u32 = 0,
    /// Testing hook (pread): each read sleeps this many microseconds before it starts, so reads
    /// stay in flight long enough for tests to see the bound and cancellation at work.
    read_delay_us: u32 = 0,
    _reserved: u32 = 0,
};

const Fault = enum(u32) { none = 0, eio = 1, short = 2 };

comptime {
    // ffi/symbols.ts STORE_OPTIONS_LAYOUT relies on this layout.
    std.debug.assert(@sizeOf(Options) == 48);
    std.debug.assert(@offsetOf(Options, "max_in_flight") == 36);
    std.debug.assert(@offsetOf(Options, "read_delay_us") == 40);
    std.debug.assert(@offsetOf(Options, "fault_mode") == 28);
    std.debug.assert(@offsetOf(Options, "fault_after") == 32);
    std.debug.assert(@offsetOf(Options, "slot_bytes") == 8);
    std.debug.assert(@offsetOf(Options, "queue_depth") == 16);
    std.debug.assert(@offsetOf(Options, "threads") == 20);
    std.debug.assert(@offsetOf(Options, "direct") == 24);
}

/// Counters, all totals since open. Mirrored in ffi/symbols.ts.
pub const Stats = extern struct {
    reads_total: u64 = 0,
    bytes_read_total: u64 = 0,
    wait_ns_total: u64 = 0,
    short_reads_total: u64 = 0,
    checksum_failures_total: u64 = 0,
    io_errors_total: u64 = 0,
    direct: u64 = 0,
    backend: u64 = 0,
    /// The most reads that were in flight at once (never above `max_in_flight`).
    in_flight_max: u64 = 0,
    /// Reads cancelled before they completed (dropped from the queue or stopped in flight).
    cancelled_total: u64 = 0,
    /// The most speculative reads that were in flight at once (never above half of `max_in_flight`).
    speculative_in_flight_max: u64 = 0,

    comptime {
        std.debug.assert(@sizeOf(Stats) == 11 * 8); // ffi/symbols.ts STORE_STATS_FIELDS
    }
};

const SlotState = enum(u8) {
    empty,
    /// Submitted, waiting in the queue for a free place in flight.
    queued,
    /// In the kernel (uring) or in a reader thread (pread).
    loading,
    ready,
    failed,
    /// Cancelled while in flight: the kernel or a reader thread may still write the slot.
    cancelling,
    /// Cancelled; holds no data.
    cancelled,

    fn busy(s: SlotState) bool {
        return s == .queued or s == .loading;
    }
};

/// user_data of an IORING_OP_ASYNC_CANCEL (reads use the slot index, always below this).
const cancel_tag: u64 = 1 << 63;

const Slot = struct {
    state: SlotState = .empty,
    /// The caller's byte range in the file.
    offset: u64 = 0,
    len: u64 = 0,
    /// Where the read starts (offset rounded down when direct) and how much it reads.
    read_offset: u64 = 0,
    read_len: u64 = 0,
    /// Bytes of the read done so far (uring resubmits after a short read).
    done: u64 = 0,
    expected_checksum: u64 = 0,
    failure: Error = error.InputOutput,
    /// The injected fault this read gets (decided at submit).
    fault: Fault = .none,
    /// A prefetch: started only while fewer than `max_speculative` speculative reads are in flight.
    speculative: bool = false,
};

const max_slots = 1 << 20;
const max_threads = 64;

pub const Store = struct {
    alloc: std.mem.Allocator,
    fd: posix.fd_t,
    direct: bool,
    backend: Backend,
    file_size: u64,
    slot_bytes: usize,
    arena: []align(direct_align) u8,
    slots: []Slot,
    stats: Stats = .{},
    /// Reads in the kernel (uring) or in a reader thread (pread), and the bound on them.
    in_flight: u32 = 0,
    max_in_flight: u32 = 1,
    speculative_in_flight: u32 = 0,
    max_speculative: u32 = 1,
    /// Submitted reads not yet started, oldest first (a ring of slot indices).
    queue: []u32 = &.{},
    queue_head: usize = 0,
    queue_len: usize = 0,
    // uring
    ring: ?linux.IoUring = null,
    /// IORING_OP_ASYNC_CANCEL requests whose completion has not been reaped.
    cancels_in_kernel: u32 = 0,
    // pread
    mutex: std.Thread.Mutex = .{},
    work_cond: std.Thread.Condition = .{},
    done_cond: std.Thread.Condition = .{},
    stopping: bool = false,
    threads: []std.Thread = &.{},
    read_delay_ns: u64 = 0,
    // mmap
    map: ?[]align(std.heap.page_size_min) u8 = null,
    // fault injection
    fault_mode: Fault = .none,
    fault_after: u32 = 0,
    submitted: u32 = 0,

    pub fn open(alloc: std.mem.Allocator, path: []const u8, opts: Options) Error!*Store {
        const backend = std.meta.intToEnum(Backend, opts.backend) catch
            return status.fail(error.InvalidArgument, "unknown store backend {d} (0 uring, 1 pread, 2 mmap)", .{opts.backend});
        if (opts.slot_count == 0 or opts.slot_count > max_slots)
            return status.fail(error.InvalidArgument, "slot_count {d} must be in 1..{d}", .{ opts.slot_count, max_slots });
        if (opts.slot_bytes == 0 or opts.slot_bytes > (1 << 34))
            return status.fail(error.InvalidArgument, "slot_bytes {d} must be in 1..16 GiB", .{opts.slot_bytes});
        if (opts.direct > 2) return status.fail(error.InvalidArgument, "direct must be 0, 1 or 2, got {d}", .{opts.direct});
        const fault_mode = std.meta.intToEnum(Fault, opts.fault_mode) catch
            return status.fail(error.InvalidArgument, "fault_mode must be 0, 1 or 2, got {d}", .{opts.fault_mode});
        const slot_bytes = std.mem.alignForward(usize, @intCast(opts.slot_bytes), direct_align);
        const arena_bytes = std.math.mul(usize, slot_bytes, opts.slot_count) catch
            return status.fail(error.InvalidArgument, "slot_count x slot_bytes overflows", .{});
        if (path.len == 0 or path.len > 4095) return status.fail(error.InvalidArgument, "path length {d} must be in 1..4095", .{path.len});

        var direct = opts.direct != 0 and backend != .mmap;
        const fd = openFile(path, direct) catch |e| blk: {
            if (direct and opts.direct == 1) {
                direct = false;
                break :blk openFile(path, false) catch |e2| return openFailure(path, e2);
            }
            return openFailure(path, e);
        };
        errdefer posix.close(fd);
        const st = posix.fstat(fd) catch return status.fail(error.InputOutput, "fstat {s} failed", .{path});
        const file_size: u64 = @intCast(st.size);

        const self = alloc.create(Store) catch return error.OutOfMemory;
        errdefer alloc.destroy(self);
        self.* = .{
            .alloc = alloc,
            .fd = fd,
            .direct = direct,
            .backend = backend,
            .file_size = file_size,
            .slot_bytes = slot_bytes,
            .arena = &.{},
            .slots = &.{},
            .fault_mode = fault_mode,
            .fault_after = opts.fault_after,
        };
        self.stats.direct = @intFromBool(direct);
        self.stats.backend = @intFromEnum(backend);
        self.slots = alloc.alloc(Slot, opts.slot_count) catch return error.OutOfMemory;
        errdefer alloc.free(self.slots);
        @memset(self.slots, .{});
        self.read_delay_ns = @as(u64, opts.read_delay_us) * std.time.ns_per_us;

        switch (backend) {
            .mmap => {
                if (file_size > 0) {
                    self.map = posix.mmap(null, @intCast(file_size), posix.PROT.READ, .{ .TYPE = .PRIVATE }, fd, 0) catch
                        return status.fail(error.InputOutput, "mmap of {s} ({d} bytes) failed", .{ path, file_size });
                }
            },
            .uring, .pread => {
                self.arena = alloc.alignedAlloc(u8, direct_align, arena_bytes) catch
                    return status.fail(error.OutOfMemory, "cannot allocate the {d}-byte slot arena", .{arena_bytes});
                // Experts are computed from the slots: huge pages, before the first read touches them.
                _ = huge_pages.advise(self.arena);
            },
        }
        errdefer if (self.arena.len > 0) alloc.free(self.arena);
        errdefer if (self.map) |m| posix.munmap(m);

        switch (backend) {
            .uring => {
                if (opts.queue_depth == 0 or opts.queue_depth > 4096)
                    return status.fail(error.InvalidArgument, "queue_depth {d} must be in 1..4096", .{opts.queue_depth});
                if (opts.max_in_flight > opts.queue_depth)
                    return status.fail(error.InvalidArgument, "max_in_flight {d} must not exceed queue_depth {d}", .{ opts.max_in_flight, opts.queue_depth });
                self.max_in_flight = if (opts.max_in_flight == 0) opts.queue_depth else opts.max_in_flight;
                self.max_speculative = @max(1, self.max_in_flight / 2);
                self.queue = alloc.alloc(u32, opts.slot_count) catch return error.OutOfMemory;
                errdefer alloc.free(self.queue);
                // Room in the rings for every read in flight plus one cancel request for each.
                const entries = std.math.ceilPowerOfTwo(u16, @intCast(opts.queue_depth)) catch unreachable;
                self.ring = linux.IoUring.init(entries, 0) catch |e|
                    return status.fail(error.Unsupported, "io_uring is not available here ({s}); use the pread backend", .{@errorName(e)});
            },
            .pread => {
                if (opts.threads == 0 or opts.threads > max_threads)
                    return status.fail(error.InvalidArgument, "threads {d} must be in 1..{d}", .{ opts.threads, max_threads });
                self.max_in_flight = if (opts.max_in_flight == 0) opts.threads else opts.max_in_flight;
                self.max_speculative = @max(1, self.max_in_flight / 2);
                self.queue = alloc.alloc(u32, opts.slot_count) catch return error.OutOfMemory;
                errdefer alloc.free(self.queue);
                self.threads = alloc.alloc(std.Thread, opts.threads) catch return error.OutOfMemory;
                var started: usize = 0;
                errdefer {
                    self.mutex.lock();
                    self.stopping = true;
                    self.work_cond.broadcast();
                    self.mutex.unlock();
                    for (self.threads[0..started]) |t| t.join();
                    alloc.free(self.threads);
                }
                lifetime.pinBeforeThreads();
                for (self.threads) |*t| {
                    t.* = std.Thread.spawn(.{ .stack_size = 256 * 1024 }, worker, .{self}) catch
                        return status.fail(error.OutOfMemory, "cannot start reader thread", .{});
                    started += 1;
                }
            },
            .mmap => {},
        }
        return self;
    }

    fn openFile(path: []const u8, direct: bool) posix.OpenError!posix.fd_t {
        return posix.open(path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true, .DIRECT = direct }, 0);
    }

    fn openFailure(path: []const u8, e: posix.OpenError) Error {
        return switch (e) {
            error.FileNotFound => status.fail(error.InputOutput, "{s} does not exist", .{path}),
            error.AccessDenied => status.fail(error.InputOutput, "{s}: permission denied", .{path}),
            error.IsDir => status.fail(error.InvalidArgument, "{s} is a directory", .{path}),
            else => status.fail(error.InputOutput, "cannot open {s}: {s}", .{ path, @errorName(e) }),
        };
    }

    pub fn close(self: *Store) void {
        if (self.ring) |*r| {
            // Queued reads never start; reap what is in flight so the kernel is done with the arena.
            self.queue_len = 0;
            while (self.in_flight + self.cancels_in_kernel > 0) self.reapOne(true) catch break;
            r.deinit();
        }
        if (self.threads.len > 0) {
            self.mutex.lock();
            self.stopping = true;
            self.work_cond.broadcast();
            self.mutex.unlock();
            for (self.threads) |t| t.join();
            self.alloc.free(self.threads);
        }
        if (self.queue.len > 0) self.alloc.free(self.queue);
        if (self.map) |m| posix.munmap(m);
        if (self.arena.len > 0) self.alloc.free(self.arena);
        self.alloc.free(self.slots);
        posix.close(self.fd);
        self.alloc.destroy(self);
    }

    fn slotMem(self: *Store, slot: u32) []u8 {
        return self.arena[@as(usize, slot) * self.slot_bytes ..][0..self.slot_bytes];
    }

    fn checkSlot(self: *Store, slot: u32) Error!*Slot {
        if (slot >= self.slots.len) return status.fail(error.InvalidArgument, "slot {d} is outside 0..{d}", .{ slot, self.slots.len - 1 });
        return &self.slots[slot];
    }

    /// Starts reading `len` bytes at `offset` into `slot`. `expected` is the
    /// checksum of those bytes (0: do not verify). A `speculative` read (a
    /// prefetch) yields to needed reads (see the top of this file).
    pub fn submit(self: *Store, slot_index: u32, offset: u64, len: u64, expected: u64, speculative: bool) Error!void {
        const slot = try self.checkSlot(slot_index);
        if (self.stateOf(slot).busy()) return status.fail(error.Busy, "slot {d} is still loading", .{slot_index});
        const end = std.math.add(u64, offset, len) catch
            return status.fail(error.InvalidArgument, "offset {d} + len {d} overflows", .{ offset, len });
        if (len == 0) return status.fail(error.InvalidArgument, "read of 0 bytes into slot {d}", .{slot_index});
        if (end > self.file_size)
            return status.fail(error.EndOfFile, "range {d}..{d} is past the end of the file ({d} bytes)", .{ offset, end, self.file_size });
        const read_offset = if (self.direct) std.mem.alignBackward(u64, offset, direct_align) else offset;
        const read_len = if (self.direct) std.mem.alignForward(u64, end - read_offset, direct_align) else len;
        if (self.backend != .mmap and read_len > self.slot_bytes)
            return status.fail(error.InvalidArgument, "read of {d} bytes does not fit a {d}-byte slot", .{ read_len, self.slot_bytes });
        // A cancelled read the kernel or a reader thread has not let go of yet: its memory is still theirs.
        try self.settle(slot);
        self.submitted +%= 1;
        const hit = self.fault_mode != .none and (self.fault_after == 0 or self.fault_after == self.submitted);
        const fresh: Slot = .{
            .state = .queued,
            .offset = offset,
            .len = len,
            .read_offset = read_offset,
            .read_len = read_len,
            .expected_checksum = expected,
            .fault = if (hit) self.fault_mode else .none,
            .speculative = speculative,
        };
        switch (self.backend) {
            .uring => {
                slot.* = fresh;
                self.enqueue(slot_index);
                try self.startQueued();
            },
            .pread => {
                self.mutex.lock();
                defer self.mutex.unlock();
                slot.* = fresh;
                self.enqueue(slot_index);
                self.work_cond.signal();
            },
            .mmap => {
                slot.* = fresh;
                // Touching a mapped page past the file's current end raises SIGBUS: check the size first.
                if (!self.mappingCovers(end)) {
                    self.fail(slot, error.EndOfFile);
                    return;
                }
                const m = self.map.?;
                const page = std.heap.page_size_min;
                const start = std.mem.alignBackward(usize, @intCast(offset), page);
                // WILLNEED reads at most a few MiB per call: advise in 8 MiB pieces.
                var p = start;
                const stop: usize = @intCast(end);
                while (p < stop) : (p += 8 << 20) {
                    posix.madvise(@alignCast(m.ptr + p), @min(8 << 20, stop - p), posix.MADV.WILLNEED) catch {};
                }
                self.finish(slot_index);
            },
        }
    }

    /// The slot's state (pread: read under the lock, reader threads change it).
    fn stateOf(self: *Store, slot: *const Slot) SlotState {
        if (self.backend != .pread) return slot.state;
        self.mutex.lock();
        defer self.mutex.unlock();
        return slot.state;
    }

    /// Blocks until a cancelled read in flight has let go of the slot (counted as waiting).
    fn settle(self: *Store, slot: *Slot) Error!void {
        var timer = std.time.Timer.start() catch null;
        defer if (timer) |*t| {
            self.stats.wait_ns_total += t.read();
        };
        switch (self.backend) {
            .uring => while (slot.state == .cancelling) try self.reapOne(true),
            .pread => {
                self.mutex.lock();
                defer self.mutex.unlock();
                while (slot.state == .cancelling) self.done_cond.wait(&self.mutex);
            },
            .mmap => {},
        }
    }

    /// The file still holds bytes up to `end` (mmap: it may have been truncated since it was mapped).
    fn mappingCovers(self: *Store, end: u64) bool {
        const st = posix.fstat(self.fd) catch return false;
        return st.size >= 0 and @as(u64, @intCast(st.size)) >= end;
    }

    // The queue of submitted reads not yet started (pread: called with the mutex held).

    fn enqueue(self: *Store, idx: u32) void {
        std.debug.assert(self.queue_len < self.queue.len);
        self.queue[(self.queue_head + self.queue_len) % self.queue.len] = idx;
        self.queue_len += 1;
    }

    /// Takes `idx` out of the queue; false if it is not there.
    fn unqueue(self: *Store, idx: u32) bool {
        var i: usize = 0;
        while (i < self.queue_len) : (i += 1) {
            if (self.queue[(self.queue_head + i) % self.queue.len] == idx) break;
        } else return false;
        while (i + 1 < self.queue_len) : (i += 1) {
            self.queue[(self.queue_head + i) % self.queue.len] = self.queue[(self.queue_head + i + 1) % self.queue.len];
        }
        self.queue_len -= 1;
        return true;
    }

    /// Moves queued `idx` to the front as a needed read: the read a caller waits for starts next.
    fn promote(self: *Store, idx: u32) void {
        if (!self.unqueue(idx)) return;
        self.slots[idx].speculative = false;
        self.queue_head = (self.queue_head + self.queue.len - 1) % self.queue.len;
        self.queue[self.queue_head] = idx;
        self.queue_len += 1;
    }

    /// The oldest queued read that may start now (a needed one, or a speculative one while there is
    /// room for it), taken out of the queue; null if none.
    fn nextStartable(self: *Store) ?u32 {
        if (self.in_flight >= self.max_in_flight) return null;
        const spec_ok = self.speculative_in_flight < self.max_speculative;
        var i: usize = 0;
        while (i < self.queue_len) : (i += 1) {
            const idx = self.queue[(self.queue_head + i) % self.queue.len];
            if (spec_ok or !self.slots[idx].speculative) {
                std.debug.assert(self.unqueue(idx));
                return idx;
            }
        }
        return null;
    }

    fn countStart(self: *Store, slot: *Slot) void {
        slot.state = .loading;
        self.in_flight += 1;
        std.debug.assert(self.in_flight <= self.max_in_flight);
        self.stats.in_flight_max = @max(self.stats.in_flight_max, self.in_flight);
        if (slot.speculative) {
            self.speculative_in_flight += 1;
            std.debug.assert(self.speculative_in_flight <= self.max_speculative);
            self.stats.speculative_in_flight_max = @max(self.stats.speculative_in_flight_max, self.speculative_in_flight);
        }
    }

    fn countEnd(self: *Store, slot: *const Slot) void {
        self.in_flight -= 1;
        if (slot.speculative) self.speculative_in_flight -= 1;
    }

    /// uring: starts queued reads while fewer than `max_in_flight` are in the kernel.
    fn startQueued(self: *Store) Error!void {
        while (self.nextStartable()) |idx| {
            self.countStart(&self.slots[idx]);
            self.queueRead(idx) catch |e| {
                self.countEnd(&self.slots[idx]);
                self.fail(&self.slots[idx], e);
                return e;
            };
        }
    }

    /// Hands the (rest of the) read of `slot_index` to the kernel; the read is already counted in flight.
    fn queueRead(self: *Store, slot_index: u32) Error!void {
        const r = &self.ring.?;
        const slot = &self.slots[slot_index];
        const buf = self.slotMem(slot_index)[@intCast(slot.done)..@intCast(slot.read_len)];
        // Every SQE is submitted at once, so the ring has room unless an earlier submit failed.
        const sqe = r.read(slot_index, self.fd, .{ .buffer = buf }, slot.read_offset + slot.done) catch
            return status.fail(error.Busy, "io_uring submission queue is full", .{});
        if (slot.speculative and buf.len >= async_min_bytes) sqe.flags |= linux.IOSQE_ASYNC;
        try submitAll(r);
    }

    /// Submits the queued SQEs; a signal interrupting io_uring_enter is not an error.
    fn submitAll(r: *linux.IoUring) Error!void {
        _ = while (true) break r.submit() catch |e| switch (e) {
            error.SignalInterrupt => continue,
            else => return status.fail(error.InputOutput, "io_uring submit failed: {s}", .{@errorName(e)}),
        };
    }

    fn reapOne(self: *Store, block: bool) Error!void {
        const r = &self.ring.?;
        var cqes: [16]linux.io_uring_cqe = undefined;
        // A signal (a profiler's SIGPROF, SIGCHLD, SIGWINCH …) interrupts the wait; wait again.
        const n = while (true) break r.copy_cqes(&cqes, if (block) 1 else 0) catch |e| switch (e) {
            error.SignalInterrupt => continue,
            else => return status.fail(error.InputOutput, "io_uring wait failed: {s}", .{@errorName(e)}),
        };
        for (cqes[0..n]) |cqe| {
            if (cqe.user_data & cancel_tag != 0) {
                // The cancel request's own completion; the read it targets completes separately.
                self.cancels_in_kernel -= 1;
                continue;
            }
            const idx: u32 = @intCast(cqe.user_data);
            const slot = &self.slots[idx];
            if (slot.state == .cancelling) {
                self.countEnd(slot);
                slot.state = .cancelled;
                continue;
            }
            const fault = slot.fault;
            slot.fault = .none;
            const errno: linux.E = if (cqe.res < 0) @enumFromInt(-cqe.res) else .SUCCESS;
            if (fault == .none and (errno == .INTR or errno == .AGAIN or errno == .CANCELED)) {
                // A signal to this thread interrupted the read before any byte was read
                // (io-wq reports it as ECANCELED, a direct issue as EINTR/EAGAIN): read again.
                self.queueRead(idx) catch |e| {
                    self.countEnd(slot);
                    self.fail(slot, e);
                    return e;
                };
                continue;
            }
            if (cqe.res < 0 or fault == .eio) {
                self.countEnd(slot);
                self.fail(slot, error.InputOutput);
                continue;
            }
            var got: u64 = @intCast(cqe.res);
            // An injected short read keeps half; the rest is read again below, as for a real one.
            if (fault == .short) {
                const half = std.mem.alignBackward(u64, got / 2, if (self.direct) direct_align else 1);
                if (half > 0) got = half;
            }
            slot.done += got;
            if (self.readComplete(slot)) {
                self.countEnd(slot);
                self.finish(idx);
            } else if (got == 0) {
                self.countEnd(slot);
                self.stats.short_reads_total += 1;
                self.fail(slot, error.EndOfFile);
            } else {
                // Still in flight: the rest of the read goes back to the kernel.
                self.stats.short_reads_total += 1;
                self.queueRead(idx) catch |e| {
                    self.countEnd(slot);
                    self.fail(slot, e);
                    return e;
                };
            }
        }
        try self.startQueued();
    }

    /// The read has every byte the caller asked for (a direct read may stop at EOF inside the padding).
    fn readComplete(self: *Store, slot: *Slot) bool {
        _ = self;
        return slot.done >= slot.read_len or slot.read_offset + slot.done >= slot.offset + slot.len;
    }

    fn fail(self: *Store, slot: *Slot, err: Error) void {
        self.stats.io_errors_total += 1;
        slot.failure = err;
        slot.state = .failed;
    }

    /// Called with the read done: verifies the checksum and marks the slot.
    fn finish(self: *Store, idx: u32) void {
        const slot = &self.slots[idx];
        self.stats.reads_total += 1;
        self.stats.bytes_read_total += slot.len;
        if (slot.expected_checksum != 0) {
            const got = checksum.hash64(self.data(idx, slot));
            if (got != slot.expected_checksum) {
                self.stats.checksum_failures_total += 1;
                slot.failure = error.ChecksumMismatch;
                slot.state = .failed;
                return;
            }
        }
        slot.state = .ready;
    }

    fn data(self: *Store, idx: u32, slot: *const Slot) []const u8 {
        if (self.map) |m| return m[@intCast(slot.offset)..][0..@intCast(slot.len)];
        const head: usize = @intCast(slot.offset - slot.read_offset);
        return self.slotMem(idx)[head..][0..@intCast(slot.len)];
    }

    fn worker(self: *Store) void {
        while (true) {
            self.mutex.lock();
            const idx = while (true) {
                if (self.stopping) {
                    self.mutex.unlock();
                    return;
                }
                if (self.nextStartable()) |i| break i;
                self.work_cond.wait(&self.mutex);
            };
            self.countStart(&self.slots[idx]);
            const slot = self.slots[idx];
            self.mutex.unlock();

            if (self.read_delay_ns > 0) std.Thread.sleep(self.read_delay_ns);
            var done: u64 = 0;
            var err: ?Error = if (slot.fault == .eio) error.InputOutput else null;
            var short = false;
            var fault = slot.fault;
            const buf = self.slotMem(idx)[0..@intCast(slot.read_len)];
            while (err == null and done < slot.read_len and slot.read_offset + done < slot.offset + slot.len) {
                // An injected short read asks for half; the loop reads the rest, as for a real one.
                const left = buf.len - @as(usize, @intCast(done));
                const half = std.mem.alignBackward(usize, left / 2, if (self.direct) direct_align else 1);
                const want = if (fault == .short and half > 0) half else left;
                fault = .none;
                const n = posix.pread(self.fd, buf[@intCast(done)..][0..want], slot.read_offset + done) catch {
                    err = error.InputOutput;
                    break;
                };
                if (n == 0) {
                    err = error.EndOfFile;
                    short = true;
                    break;
                }
                if (n < buf.len - done) short = true;
                done += n;
            }

            self.mutex.lock();
            const s = &self.slots[idx];
            self.countEnd(s);
            if (s.state == .cancelling) {
                s.state = .cancelled;
            } else {
                s.done = done;
                if (short) self.stats.short_reads_total += 1;
                if (err) |e| self.fail(s, e) else self.finish(idx);
            }
            self.done_cond.broadcast();
            // A place in flight is free again (maybe one only a speculative read was waiting for).
            self.work_cond.broadcast();
            self.mutex.unlock();
        }
    }

    /// Blocks until `slot` is loaded; returns its data. A queued read starts before the other queued ones.
    pub fn wait(self: *Store, slot_index: u32) Error![]const u8 {
        const slot = try self.checkSlot(slot_index);
        var timer = std.time.Timer.start() catch null;
        switch (self.backend) {
            .uring => {
                if (slot.state == .queued) {
                    self.promote(slot_index);
                    try self.startQueued();
                }
                while (slot.state.busy()) try self.reapOne(true);
            },
            .pread => {
                self.mutex.lock();
                defer self.mutex.unlock();
                if (slot.state == .queued) {
                    self.promote(slot_index);
                    self.work_cond.broadcast();
                }
                while (slot.state.busy()) self.done_cond.wait(&self.mutex);
            },
            .mmap => if (slot.state == .ready and !self.mappingCovers(slot.offset + slot.len)) self.fail(slot, error.EndOfFile),
        }
        if (timer) |*t| self.stats.wait_ns_total += t.read();
        return switch (slot.state) {
            .ready => self.data(slot_index, slot),
            .empty => status.fail(error.InvalidArgument, "slot {d} was never submitted", .{slot_index}),
            .cancelling, .cancelled => status.fail(error.InvalidArgument, "the read into slot {d} was cancelled", .{slot_index}),
            .queued, .loading => unreachable,
            .failed => switch (slot.failure) {
                error.ChecksumMismatch => status.fail(error.ChecksumMismatch, "checksum mismatch in bytes {d}..{d} (slot {d})", .{ slot.offset, slot.offset + slot.len, slot_index }),
                error.EndOfFile => status.fail(error.EndOfFile, "short read at {d}..{d} (slot {d}): the file ends early (truncated?)", .{ slot.offset, slot.offset + slot.len, slot_index }),
                else => |e| status.fail(e, "read error at {d}..{d} (slot {d})", .{ slot.offset, slot.offset + slot.len, slot_index }),
            },
        };
    }

    /// Marks the read into `slot` as needed without waiting for it: a queued read moves to the front
    /// of the queue and starts if there is room; one in flight or done is left as it is.
    pub fn need(self: *Store, slot_index: u32) Error!void {
        const slot = try self.checkSlot(slot_index);
        switch (self.backend) {
            .uring => if (slot.state == .queued) {
                self.promote(slot_index);
                try self.startQueued();
            },
            .pread => {
                self.mutex.lock();
                defer self.mutex.unlock();
                if (slot.state == .queued) {
                    self.promote(slot_index);
                    self.work_cond.broadcast();
                }
            },
            .mmap => {},
        }
    }

    /// Stops the read into `slot` if it has not completed: a queued read is dropped; one in flight
    /// is cancelled too if `in_flight` (uring: IORING_OP_ASYNC_CANCEL; pread: its result is
    /// discarded), else left to complete. Returns whether a read was stopped; false leaves the
    /// slot as it was. A cancelled slot is never returned as data; it can be submitted again at
    /// once (the submit waits if the kernel or a reader thread is still writing it).
    pub fn cancel(self: *Store, slot_index: u32, in_flight: bool) Error!bool {
        const slot = try self.checkSlot(slot_index);
        switch (self.backend) {
            .uring => {
                // Completions matter only when stopping reads in flight (a queued read is still queued).
                if (in_flight) try self.poll();
                switch (slot.state) {
                    .queued => {
                        std.debug.assert(self.unqueue(slot_index));
                        slot.state = .cancelled;
                    },
                    .loading => {
                        if (!in_flight) return false;
                        const r = &self.ring.?;
                        _ = r.cancel(cancel_tag | slot_index, slot_index, 0) catch
                            return status.fail(error.Busy, "io_uring submission queue is full", .{});
                        try submitAll(r);
                        self.cancels_in_kernel += 1;
                        slot.state = .cancelling;
                    },
                    else => return false,
                }
            },
            .pread => {
                self.mutex.lock();
                defer self.mutex.unlock();
                switch (slot.state) {
                    .queued => {
                        std.debug.assert(self.unqueue(slot_index));
                        slot.state = .cancelled;
                    },
                    .loading => if (in_flight) {
                        slot.state = .cancelling;
                    } else return false,
                    else => return false,
                }
            },
            // madvise has nothing to stop.
            .mmap => return false,
        }
        self.stats.cancelled_total += 1;
        return true;
    }

    /// Reaps finished reads without blocking (uring); a no-op for the other backends.
    pub fn poll(self: *Store) Error!void {
        if (self.ring != null) {
            while (self.in_flight + self.cancels_in_kernel > 0) {
                const before = self.in_flight + self.cancels_in_kernel;
                try self.reapOne(false);
                if (self.in_flight + self.cancels_in_kernel == before) break;
            }
        }
    }
};

// ---------------------------------------------------------------------------
// Tests

fn tmpFile(dir: std.testing.TmpDir, name: []const u8, bytes: []const u8) ![]u8 {
    try dir.dir.writeFile(.{ .sub_path = name, .data = bytes });
    return dir.dir.realpathAlloc(std.testing.allocator, name);
}

/// A store over `path` for a test, or null where this kernel lacks the backend (the test skips it).
fn openForTest(path: []const u8, opts: Options) !?*Store {
    return Store.open(std.testing.allocator, path, opts) catch |e| switch (e) {
        error.Unsupported => null,
        else => e,
    };
}

fn testBackend(backend: Backend, direct: u32) !void {
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    const content = try std.testing.allocator.alloc(u8, 3 * 4096 + 100);
    defer std.testing.allocator.free(content);
    for (content, 0..) |*b, i| b.* = @truncate(i *% 31 +% 7);
    const path = try tmpFile(tmp, "model.bin", content);
    defer std.testing.allocator.free(path);
    const s = try Store.open(std.testing.allocator, path, .{
        .backend = @intFromEnum(backend),
        .slot_count = 3,
        .slot_bytes = 3 * 4096,
        .queue_depth = 4,
        .threads = 2,
        .direct = direct,
    });
    defer s.close();
    // Unaligned range, aligned range, and the file's tail (EOF inside the direct padding).
    try s.submit(0, 100, 5000, checksum.hash64(content[100..5100]), false);
    try s.submit(1, 4096, 4096, 0, false);
    try s.submit(2, 3 * 4096, 100, checksum.hash64(content[3 * 4096 ..]), false);
    try std.testing.expectEqualSlices(u8, content[100..5100], try s.wait(0));
    try std.testing.expectEqualSlices(u8, content[4096..8192], try s.wait(1));
    try std.testing.expectEqualSlices(u8, content[3 * 4096 ..], try s.wait(2));
    // A wrong checksum is an error naming the range, never data.
    try s.submit(0, 10, 20, 12345, false);
    try std.testing.expectError(error.ChecksumMismatch, s.wait(0));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "checksum mismatch in bytes 10..30") != null);
    // Past the end is refused at submit.
    try std.testing.expectError(error.EndOfFile, s.submit(1, content.len - 10, 11, 0, false));
    try std.testing.expectError(error.InvalidArgument, s.submit(7, 0, 1, 0, false));
    try std.testing.expect(s.stats.checksum_failures_total == 1);
}

test "store: every backend reads exact ranges and verifies checksums" {
    try testBackend(.pread, 0);
    try testBackend(.pread, 1);
    try testBackend(.mmap, 0);
    testBackend(.uring, 1) catch |e| switch (e) {
        // qemu-user does not emulate io_uring; natively it must work.
        error.Unsupported => if (@import("builtin").cpu.arch == .x86_64) return e,
        else => return e,
    };
}

test "store: a signal during a blocking io_uring wait is not an error (the wait resumes)" {
    if (@import("builtin").cpu.arch != .x86_64) return; // qemu-user has no io_uring
    const Handler = struct {
        fn onAlarm(_: i32) callconv(.c) void {}
    };
    // No SA_RESTART: a blocked io_uring_enter returns EINTR, as under a profiler's SIGPROF.
    const act = posix.Sigaction{ .handler = .{ .handler = Handler.onAlarm }, .mask = posix.empty_sigset, .flags = 0 };
    var old: posix.Sigaction = undefined;
    posix.sigaction(posix.SIG.ALRM, &act, &old);
    defer posix.sigaction(posix.SIG.ALRM, &old, null);
    // setitimer takes an itimerval (two timevals; std's wrapper declares timespecs): every 50 µs.
    const timer = linux.timeval{ .sec = 0, .usec = 50 };
    const itv = [2]linux.timeval{ timer, timer };
    _ = linux.syscall3(.setitimer, 0, @intFromPtr(&itv), 0);
    defer {
        const zero = [2]linux.timeval{ .{ .sec = 0, .usec = 0 }, .{ .sec = 0, .usec = 0 } };
        _ = linux.syscall3(.setitimer, 0, @intFromPtr(&zero), 0);
    }

    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    const content = try std.testing.allocator.alloc(u8, 1 << 20);
    defer std.testing.allocator.free(content);
    for (content, 0..) |*b, i| b.* = @truncate(i *% 2654435761);
    const path = try tmpFile(tmp, "s.bin", content);
    defer std.testing.allocator.free(path);
    const s = (try openForTest(path, .{ .backend = @intFromEnum(Backend.uring), .slot_count = 2, .slot_bytes = 1 << 19, .queue_depth = 2, .threads = 1, .direct = 1 })) orelse return;
    defer s.close();
    for (0..400) |i| {
        const half = (i % 2) << 19;
        try s.submit(@intCast(i % 2), half, 1 << 19, checksum.hash64(content[half..][0 .. 1 << 19]), false);
        const got = s.wait(@intCast(i % 2)) catch |e| {
            std.debug.print("read {d}: {s}\n", .{ i, status.lastMessage() });
            return e;
        };
        try std.testing.expectEqualSlices(u8, content[half..][0 .. 1 << 19], got);
    }
}

test "store: a file truncated after submit is a short read error, not zeros" {
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    const content = [_]u8{0xAB} ** 9000;
    const path = try tmpFile(tmp, "t.bin", &content);
    defer std.testing.allocator.free(path);
    for ([_]Backend{ .pread, .uring, .mmap }) |b| {
        try tmp.dir.writeFile(.{ .sub_path = "t.bin", .data = &content });
        const s = (try openForTest(path, .{ .backend = @intFromEnum(b), .slot_count = 1, .slot_bytes = 16384, .queue_depth = 2, .threads = 1, .direct = 0 })) orelse continue;
        defer s.close();
        const f = try tmp.dir.openFile("t.bin", .{ .mode = .read_write });
        try f.setEndPos(100);
        f.close();
        try s.submit(0, 50, 8000, 0, false);
        try std.testing.expectError(error.EndOfFile, s.wait(0));
    }
}

test "store: mmap checks the file size before touching the mapping (a truncated file is an error, not SIGBUS)" {
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    const content = [_]u8{0xCD} ** (3 * 4096);
    const path = try tmpFile(tmp, "m.bin", &content);
    defer std.testing.allocator.free(path);
    const s = try Store.open(std.testing.allocator, path, .{ .backend = @intFromEnum(Backend.mmap), .slot_count = 2, .slot_bytes = 4096, .queue_depth = 2, .threads = 1, .direct = 0 });
    defer s.close();
    try s.submit(0, 2 * 4096, 4096, checksum.hash64(content[2 * 4096 ..]), false);
    const f = try tmp.dir.openFile("m.bin", .{ .mode = .read_write });
    try f.setEndPos(4096);
    f.close();
    // Submitted before the truncation, waited for after it.
    try std.testing.expectError(error.EndOfFile, s.wait(0));
    // Submitted after it, with a checksum (verifying it would read the mapping).
    try s.submit(1, 4096 + 100, 200, checksum.hash64(content[4096 + 100 ..][0..200]), false);
    try std.testing.expectError(error.EndOfFile, s.wait(1));
    // What the file still holds reads fine.
    try s.submit(1, 0, 4096, checksum.hash64(content[0..4096]), false);
    try std.testing.expectEqualSlices(u8, content[0..4096], try s.wait(1));
}

test "store: injected EIO fails only the hit read; injected short reads still give exact bytes" {
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    var content: [5 * 4096]u8 = undefined;
    for (&content, 0..) |*b, i| b.* = @truncate(i *% 13);
    const path = try tmpFile(tmp, "f.bin", &content);
    defer std.testing.allocator.free(path);
    for ([_]Backend{ .pread, .uring }) |b| {
        for ([_]u32{ 0, 1 }) |direct| {
            const eio = (try openForTest(path, .{ .backend = @intFromEnum(b), .slot_count = 2, .slot_bytes = 3 * 4096, .queue_depth = 2, .threads = 1, .direct = direct, .fault_mode = 1, .fault_after = 2 })) orelse continue;
            defer eio.close();
            try eio.submit(0, 0, 4096, 0, false);
            try eio.submit(1, 4096, 4096, 0, false);
            try std.testing.expectEqualSlices(u8, content[0..4096], try eio.wait(0));
            try std.testing.expectError(error.InputOutput, eio.wait(1));
            try eio.submit(1, 4096, 4096, 0, false);
            try std.testing.expectEqualSlices(u8, content[4096..8192], try eio.wait(1));

            const short = try Store.open(std.testing.allocator, path, .{ .backend = @intFromEnum(b), .slot_count = 1, .slot_bytes = 3 * 4096, .queue_depth = 2, .threads = 1, .direct = direct, .fault_mode = 2, .fault_after = 0 });
            defer short.close();
            try short.submit(0, 100, 2 * 4096 + 7, 0, false);
            try std.testing.expectEqualSlices(u8, content[100 .. 100 + 2 * 4096 + 7], try short.wait(0));
            try std.testing.expect(short.stats.short_reads_total >= 1);
        }
    }
}

test "store: bad options are refused with a message" {
    try std.testing.expectError(error.InvalidArgument, Store.open(std.testing.allocator, "/nonexistent", .{ .backend = 9, .slot_count = 1, .slot_bytes = 1, .queue_depth = 1, .threads = 1, .direct = 0 }));
    try std.testing.expectError(error.InvalidArgument, Store.open(std.testing.allocator, "/nonexistent", .{ .backend = 1, .slot_count = 0, .slot_bytes = 1, .queue_depth = 1, .threads = 1, .direct = 0 }));
    try std.testing.expectError(error.InputOutput, Store.open(std.testing.allocator, "/nonexistent/x", .{ .backend = 1, .slot_count = 1, .slot_bytes = 1, .queue_depth = 1, .threads = 1, .direct = 0 }));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "does not exist") != null);
}

test "store: reads in flight never exceed max_in_flight; a queued read waited for goes first" {
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    var content: [8 * 4096]u8 = undefined;
    for (&content, 0..) |*b, i| b.* = @truncate(i *% 29 +% (i >> 12));
    const path = try tmpFile(tmp, "q.bin", &content);
    defer std.testing.allocator.free(path);
    for ([_]Backend{ .pread, .uring }) |b| {
        // pread: 4 reader threads but 2 reads at once, each slowed so that all four threads compete.
        const s = (try openForTest(path, .{ .backend = @intFromEnum(b), .slot_count = 8, .slot_bytes = 2 * 4096, .queue_depth = 4, .threads = 4, .direct = 1, .max_in_flight = 2, .read_delay_us = 2000 })) orelse continue;
        defer s.close();
        for (0..8) |i| try s.submit(@intCast(i), i * 4096, 4096, checksum.hash64(content[i * 4096 ..][0..4096]), false);
        // The last one submitted is waited for first: it is read before the other queued ones.
        try std.testing.expectEqualSlices(u8, content[7 * 4096 ..][0..4096], try s.wait(7));
        for (0..7) |i| try std.testing.expectEqualSlices(u8, content[i * 4096 ..][0..4096], try s.wait(@intCast(i)));
        try std.testing.expectEqual(@as(u64, 2), s.stats.in_flight_max);
        try std.testing.expectEqual(@as(u64, 8), s.stats.reads_total);
    }
    // The bound may not exceed the ring.
    try std.testing.expectError(error.InvalidArgument, Store.open(std.testing.allocator, path, .{ .backend = 0, .slot_count = 1, .slot_bytes = 4096, .queue_depth = 2, .threads = 1, .direct = 0, .max_in_flight = 3 }));
}

test "store: a cancelled read is never data, frees its slot at once, and the slot reads correctly again" {
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    var content: [6 * 4096]u8 = undefined;
    for (&content, 0..) |*b, i| b.* = @truncate(i *% 17 +% 3);
    const path = try tmpFile(tmp, "c.bin", &content);
    defer std.testing.allocator.free(path);
    for ([_]Backend{ .pread, .uring }) |b| {
        const s = (try openForTest(path, .{ .backend = @intFromEnum(b), .slot_count = 4, .slot_bytes = 2 * 4096, .queue_depth = 1, .threads = 1, .direct = 1, .max_in_flight = 1, .read_delay_us = 20_000 })) orelse continue;
        defer s.close();
        for (0..4) |i| try s.submit(@intCast(i), i * 4096, 4096, checksum.hash64(content[i * 4096 ..][0..4096]), false);
        // With one read in flight, slots 1..3 are queued: cancelling them drops them.
        try std.testing.expect(try s.cancel(3, true));
        try std.testing.expect(try s.cancel(2, true));
        try std.testing.expectError(error.InvalidArgument, s.wait(3));
        try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "was cancelled") != null);
        // Slot 0 is in flight (or done: then there is nothing to stop and its data stays valid).
        // uring hands it to the kernel at submit: a cancel of queued reads only leaves it alone.
        if (b == .uring) try std.testing.expect(!try s.cancel(0, false));
        const stopped = try s.cancel(0, true);
        if (stopped) try std.testing.expectError(error.InvalidArgument, s.wait(0));
        // The freed slots take other reads at once (slot 0 after its read has let go of it).
        try s.submit(3, 5 * 4096, 4096, checksum.hash64(content[5 * 4096 ..][0..4096]), false);
        try s.submit(0, 4 * 4096, 100, checksum.hash64(content[4 * 4096 ..][0..100]), false);
        try s.submit(2, 2 * 4096, 4096, checksum.hash64(content[2 * 4096 ..][0..4096]), false);
        try std.testing.expectEqualSlices(u8, content[5 * 4096 ..][0..4096], try s.wait(3));
        try std.testing.expectEqualSlices(u8, content[4 * 4096 ..][0..100], try s.wait(0));
        try std.testing.expectEqualSlices(u8, content[2 * 4096 ..][0..4096], try s.wait(2));
        try std.testing.expectEqualSlices(u8, content[4096..][0..4096], try s.wait(1));
        // A completed read has nothing to cancel and keeps its data.
        try std.testing.expect(!try s.cancel(1, true));
        try std.testing.expectEqualSlices(u8, content[4096..][0..4096], try s.wait(1));
        try std.testing.expectEqual(@as(u64, 2) + @intFromBool(stopped), s.stats.cancelled_total);
        try std.testing.expect(s.stats.in_flight_max == 1);
        try std.testing.expect(s.stats.checksum_failures_total == 0);
    }
}

test "store: speculative reads take at most half the places in flight; a needed read starts at once" {
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    var content: [8 * 4096]u8 = undefined;
    for (&content, 0..) |*b, i| b.* = @truncate(i *% 11 +% 5);
    const path = try tmpFile(tmp, "s.bin", &content);
    defer std.testing.allocator.free(path);
    for ([_]Backend{ .pread, .uring }) |b| {
        const s = (try openForTest(path, .{ .backend = @intFromEnum(b), .slot_count = 8, .slot_bytes = 2 * 4096, .queue_depth = 4, .threads = 4, .direct = 1, .max_in_flight = 4, .read_delay_us = 5000 })) orelse continue;
        defer s.close();
        // Six prefetches, then two needed reads: those start beside the two speculative ones in flight.
        for (0..6) |i| try s.submit(@intCast(i), i * 4096, 4096, checksum.hash64(content[i * 4096 ..][0..4096]), true);
        for (6..8) |i| try s.submit(@intCast(i), i * 4096, 4096, checksum.hash64(content[i * 4096 ..][0..4096]), false);
        for ([_]usize{ 6, 7, 0, 1, 2, 3, 4, 5 }) |i| try std.testing.expectEqualSlices(u8, content[i * 4096 ..][0..4096], try s.wait(@intCast(i)));
        try std.testing.expectEqual(@as(u64, 2), s.stats.speculative_in_flight_max);
        try std.testing.expect(s.stats.in_flight_max >= 3 and s.stats.in_flight_max <= 4);
    }
}

test "store: a queued prefetch marked needed starts at once, beyond the bound on speculative reads" {
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    var content: [6 * 4096]u8 = undefined;
    for (&content, 0..) |*b, i| b.* = @truncate(i *% 13 +% 3);
    const path = try tmpFile(tmp, "n.bin", &content);
    defer std.testing.allocator.free(path);
    for ([_]Backend{ .pread, .uring }) |b| {
        const s = (try openForTest(path, .{ .backend = @intFromEnum(b), .slot_count = 6, .slot_bytes = 2 * 4096, .queue_depth = 4, .threads = 4, .direct = 1, .max_in_flight = 4, .read_delay_us = 5000 })) orelse continue;
        defer s.close();
        // Six prefetches: two start, four queue behind the bound; 4 and 5 are then needed.
        for (0..6) |i| try s.submit(@intCast(i), i * 4096, 4096, checksum.hash64(content[i * 4096 ..][0..4096]), true);
        try s.need(4);
        try s.need(5);
        try s.need(0); // in flight or done: left as it is
        try std.testing.expectError(error.InvalidArgument, s.need(6));
        // uring starts them in the call; pread's threads take them next (they are no longer speculative).
        if (b == .uring) try std.testing.expectEqual(@as(u32, 4), s.in_flight);
        s.mutex.lock();
        const spec = .{ s.slots[4].speculative, s.slots[5].speculative };
        s.mutex.unlock();
        try std.testing.expect(!spec[0] and !spec[1]);
        for ([_]usize{ 4, 5, 0, 1, 2, 3 }) |i| try std.testing.expectEqualSlices(u8, content[i * 4096 ..][0..4096], try s.wait(@intCast(i)));
        try std.testing.expectEqual(@as(u64, 2), s.stats.speculative_in_flight_max);
        try std.testing.expect(s.stats.in_flight_max <= 4);
    }
}

test "store: long speculative reads (issued by the kernel's workers) read, verify and cancel like any other" {
    var tmp = std.testing.tmpDir(.{});
    defer tmp.cleanup();
    const part = async_min_bytes + 3 * 4096 + 100;
    const content = try std.testing.allocator.alloc(u8, 3 * part);
    defer std.testing.allocator.free(content);
    for (content, 0..) |*b, i| b.* = @truncate(i *% 29 +% (i >> 12));
    const path = try tmpFile(tmp, "long.bin", content);
    defer std.testing.allocator.free(path);
    const s = (try openForTest(path, .{ .backend = @intFromEnum(Backend.uring), .slot_count = 3, .slot_bytes = part + 2 * 4096, .queue_depth = 4, .threads = 1, .direct = 1 })) orelse return;
    defer s.close();
    for (0..3) |i| try s.submit(@intCast(i), i * part, part, checksum.hash64(content[i * part ..][0..part]), true);
    // One is given up (cancelled wherever it is), then read again as a needed read into the same slot.
    _ = try s.cancel(1, true);
    try s.submit(1, part, part, checksum.hash64(content[part..][0..part]), false);
    for (0..3) |i| try std.testing.expectEqualSlices(u8, content[i * part ..][0..part], try s.wait(@intCast(i)));
    try std.testing.expectEqual(@as(u64, 0), s.stats.checksum_failures_total);
}
