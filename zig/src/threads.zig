//! A fixed-size thread pool for row-parallel kernels.
//!
//! Created with an explicit thread count (the caller's thread counts as one:
//! `threads - 1` workers are spawned); everything is allocated at creation.
//! `run` splits `[0, rows)` into `threads` contiguous ranges, the caller takes
//! the first, and returns when all are done. Work is split by ROWS only, never
//! inside a dot product, so every output element is computed by exactly the
//! same code whatever the thread count: results are bit-identical for 1, 2 or
//! N threads. One `run` at a time per pool; a concurrent call gets `Busy`.
const std = @import("std");

pub const max_threads = 256;

pub const Job = struct {
    ctx: *const anyopaque,
    func: *const fn (ctx: *const anyopaque, row_begin: usize, row_end: usize) void,
    rows: usize,
};

pub const Pool = struct {
    allocator: std.mem.Allocator,
    workers: []std.Thread,
    mutex: std.Thread.Mutex = .{},
    work_ready: std.Thread.Condition = .{},
    work_done: std.Thread.Condition = .{},
    generation: u64 = 0,
    pending: usize = 0,
    stopping: bool = false,
    job: ?Job = null,
    busy: std.atomic.Value(bool) = .init(false),

    pub const CreateError = error{ InvalidArgument, OutOfMemory, SystemResources };

    /// A pool of `threads` (1..max_threads) including the calling thread.
    pub fn create(allocator: std.mem.Allocator, threads: usize) CreateError!*Pool {
        if (threads == 0 or threads > max_threads) return error.InvalidArgument;
        const self = try allocator.create(Pool);
        errdefer allocator.destroy(self);
        const workers = try allocator.alloc(std.Thread, threads - 1);
        errdefer allocator.free(workers);
        self.* = .{ .allocator = allocator, .workers = workers };
        var spawned: usize = 0;
        errdefer self.stopAndJoin(spawned);
        for (workers, 0..) |*t, i| {
            t.* = std.Thread.spawn(.{ .stack_size = 256 * 1024 }, workerMain, .{ self, i + 1 }) catch return error.SystemResources;
            spawned += 1;
        }
        return self;
    }

    /// Stops and joins the workers and frees the pool.
    pub fn destroy(self: *Pool) void {
        self.stopAndJoin(self.workers.len);
        const allocator = self.allocator;
        allocator.free(self.workers);
        allocator.destroy(self);
    }

    fn stopAndJoin(self: *Pool, spawned: usize) void {
        self.mutex.lock();
        self.stopping = true;
        self.work_ready.broadcast();
        self.mutex.unlock();
        for (self.workers[0..spawned]) |t| t.join();
    }

    pub fn threadCount(self: *const Pool) usize {
        return self.workers.len + 1;
    }

    /// Rows of part `part` out of `parts`: contiguous, in order, covering all.
    pub fn partRange(rows: usize, part: usize, parts: usize) struct { usize, usize } {
        return .{ rows * part / parts, rows * (part + 1) / parts };
    }

    /// Runs `job` over all rows on every thread of the pool and waits.
    pub fn run(self: *Pool, job: Job) error{Busy}!void {
        if (self.busy.swap(true, .acquire)) return error.Busy;
        defer self.busy.store(false, .release);
        const parts = self.threadCount();
        if (parts == 1 or job.rows < 2) {
            job.func(job.ctx, 0, job.rows);
            return;
        }
        self.mutex.lock();
        self.job = job;
        self.pending = self.workers.len;
        self.generation +%= 1;
        self.work_ready.broadcast();
        self.mutex.unlock();

        const r = partRange(job.rows, 0, parts);
        job.func(job.ctx, r[0], r[1]);

        self.mutex.lock();
        while (self.pending != 0) self.work_done.wait(&self.mutex);
        self.job = null;
        self.mutex.unlock();
    }

    fn workerMain(self: *Pool, part: usize) void {
        var seen: u64 = 0;
        while (true) {
            self.mutex.lock();
            while (!self.stopping and self.generation == seen) self.work_ready.wait(&self.mutex);
            if (self.stopping) {
                self.mutex.unlock();
                return;
            }
            seen = self.generation;
            const job = self.job.?;
            self.mutex.unlock();

            const r = partRange(job.rows, part, self.threadCount());
            if (r[0] < r[1]) job.func(job.ctx, r[0], r[1]);

            self.mutex.lock();
            self.pending -= 1;
            if (self.pending == 0) self.work_done.signal();
            self.mutex.unlock();
        }
    }
};

test "pool: every row exactly once, for 1..5 threads and odd row counts" {
    const Ctx = struct {
        hits: []std.atomic.Value(u32),
        fn run(p: *const anyopaque, b: usize, e: usize) void {
            const c: *const @This() = @ptrCast(@alignCast(p));
            for (c.hits[b..e]) |*h| _ = h.fetchAdd(1, .monotonic);
        }
    };
    for (1..6) |n| {
        const pool = try Pool.create(std.testing.allocator, n);
        defer pool.destroy();
        for ([_]usize{ 0, 1, 2, 3, 7, 100 }) |rows| {
            const hits = try std.testing.allocator.alloc(std.atomic.Value(u32), rows);
            defer std.testing.allocator.free(hits);
            for (hits) |*h| h.* = .init(0);
            const ctx = Ctx{ .hits = hits };
            for (0..3) |_| try pool.run(.{ .ctx = &ctx, .func = Ctx.run, .rows = rows });
            for (hits) |h| try std.testing.expectEqual(@as(u32, 3), h.load(.monotonic));
        }
    }
    try std.testing.expectError(error.InvalidArgument, Pool.create(std.testing.allocator, 0));
}
