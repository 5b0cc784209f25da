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
const lifetime = @import("lifetime.zig");

pub const max_threads = 256;

pub const Job = struct {
    ctx: *const anyopaque,
    func: *const fn (ctx: *const anyopaque, row_begin: usize, row_end: usize) void,
    rows: usize,
};

/// How long a thread that finished its part keeps polling for the next job
/// (or for the last part to finish) before it sleeps on the mutex. A decode
/// step runs hundreds of small matvecs a few microseconds apart, and waking a
/// sleeping thread costs tens of microseconds each time. Each poll calls
/// sched_yield instead of spinning on `pause`: on an idle machine it returns at
/// once, on a loaded one the other runnable threads get the core (a pure spin
/// made 2-thread decode 4x slower than 1 thread there). Measured on a 2.6 B
/// Q4_K model, 2 threads: 40 tok/s with the sleeping pool, 60 with this
/// (real-time priority, i.e. an otherwise idle machine); no change under load.
pub const spin_ns: u64 = 200 * std.time.ns_per_us;

pub const Pool = struct {
    allocator: std.mem.Allocator,
    workers: []std.Thread,
    mutex: std.Thread.Mutex = .{},
    work_ready: std.Thread.Condition = .{},
    work_done: std.Thread.Condition = .{},
    /// Bumped (release) after `job` and `pending` are set; workers spin or wait on it.
    generation: std.atomic.Value(u64) = .init(0),
    /// Worker parts of the current job not finished yet.
    pending: std.atomic.Value(usize) = .init(0),
    stopping: std.atomic.Value(bool) = .init(false),
    /// Workers blocked on `work_ready` (read and written under `mutex`).
    sleepers: usize = 0,
    job: Job = undefined,
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
        if (workers.len > 0) lifetime.pinBeforeThreads();
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
        self.stopping.store(true, .release);
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
        // Publish the job, then the generation (release): a worker that sees the
        // new generation (acquire) sees the job.
        self.job = job;
        self.pending.store(self.workers.len, .monotonic);
        _ = self.generation.fetchAdd(1, .release);
        // A worker that went to sleep did so under the mutex after re-checking the
        // generation, so taking the mutex here cannot miss it.
        self.mutex.lock();
        if (self.sleepers > 0) self.work_ready.broadcast();
        self.mutex.unlock();

        const r = partRange(job.rows, 0, parts);
        job.func(job.ctx, r[0], r[1]);

        if (!self.spin(allPartsDone, 0)) {
            self.mutex.lock();
            while (self.pending.load(.acquire) != 0) self.work_done.wait(&self.mutex);
            self.mutex.unlock();
        }
    }

    fn allPartsDone(self: *Pool, _: u64) bool {
        return self.pending.load(.acquire) == 0;
    }

    fn workArrived(self: *Pool, seen: u64) bool {
        return self.generation.load(.acquire) != seen or self.stopping.load(.acquire);
    }

    /// Spins until `cond(self, arg)` holds, for at most `spin_ns`; false if it did not.
    fn spin(self: *Pool, comptime cond: fn (*Pool, u64) bool, arg: u64) bool {
        const start = std.time.Instant.now() catch return cond(self, arg);
        var i: u32 = 0;
        while (!cond(self, arg)) : (i +%= 1) {
            std.Thread.yield() catch {};
            if (i % 8 == 7) {
                const now = std.time.Instant.now() catch return false;
                if (now.since(start) > spin_ns) return false;
            }
        }
        return true;
    }

    fn workerMain(self: *Pool, part: usize) void {
        var seen: u64 = 0;
        while (true) {
            if (!self.spin(workArrived, seen)) {
                self.mutex.lock();
                self.sleepers += 1;
                while (!self.stopping.load(.acquire) and self.generation.load(.acquire) == seen)
                    self.work_ready.wait(&self.mutex);
                self.sleepers -= 1;
                self.mutex.unlock();
            }
            if (self.stopping.load(.acquire)) return;
            seen = self.generation.load(.acquire);
            const job = self.job;

            const r = partRange(job.rows, part, self.threadCount());
            if (r[0] < r[1]) job.func(job.ctx, r[0], r[1]);

            if (self.pending.fetchSub(1, .acq_rel) == 1) {
                // The caller may be asleep on work_done: it re-checks `pending` under the mutex.
                self.mutex.lock();
                self.work_done.signal();
                self.mutex.unlock();
            }
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

test "pool: work after the workers went to sleep, and thousands of back-to-back runs" {
    const Ctx = struct {
        sum: std.atomic.Value(u64) = .init(0),
        fn run(p: *const anyopaque, b: usize, e: usize) void {
            const c: *@This() = @constCast(@ptrCast(@alignCast(p)));
            for (b..e) |i| _ = c.sum.fetchAdd(i + 1, .monotonic);
        }
    };
    const pool = try Pool.create(std.testing.allocator, 3);
    defer pool.destroy();
    var ctx = Ctx{};
    // Idle longer than the spin: every worker is asleep on the condition.
    std.time.sleep(4 * spin_ns);
    try pool.run(.{ .ctx = &ctx, .func = Ctx.run, .rows = 10 });
    try std.testing.expectEqual(@as(u64, 55), ctx.sum.load(.monotonic));
    ctx.sum.store(0, .monotonic);
    for (0..1000) |_| try pool.run(.{ .ctx = &ctx, .func = Ctx.run, .rows = 4 });
    try std.testing.expectEqual(@as(u64, 1000 * 10), ctx.sum.load(.monotonic));
}
