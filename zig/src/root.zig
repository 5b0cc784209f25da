//! libedgemoe: the only export block. Every function here takes pointer+length
//! pairs, returns a `Status` as i32 (0 ok, negative failure) and writes created
//! objects and results through out-pointers. Detail text for a failure comes
//! from `emoe_last_error`. Nothing panics across this boundary: bodies return
//! `status.Error!void` and `status.call` maps errors through one exhaustive
//! switch.
//!
//! The TypeScript twin of this block is ffi/symbols.ts; tests/ffi_symbols_test.ts
//! checks that both agree on every name and parameter type.
const std = @import("std");
const status = @import("c_api/status.zig");
const cpu = @import("cpu.zig");
const matvec = @import("kernels/matvec.zig");
const f32k = @import("kernels/f32.zig");
const dispatch = @import("kernels/dispatch.zig");
const threads = @import("threads.zig");
const store = @import("io/store.zig");
const checksum = @import("io/checksum.zig");
const norm = @import("kernels/norm.zig");
const rope_k = @import("kernels/rope.zig");
const act = @import("kernels/act.zig");
const attention_k = @import("kernels/attention.zig");
const huge_pages = @import("huge_pages.zig");

/// Bumped whenever an export changes name, parameters or meaning.
pub const abi_version: u32 = 4;

const Error = status.Error;

/// Turns a C pointer+length pair into a slice, checking null and alignment.
fn slice(comptime T: type, ptr: ?[*]const T, len: usize, name: []const u8) Error![]const T {
    if (len == 0) return &.{};
    const p = ptr orelse return status.fail(error.NullPointer, "{s} is null but its length is {d}", .{ name, len });
    if (@intFromPtr(p) % @alignOf(T) != 0)
        return status.fail(error.InvalidArgument, "{s} is not aligned to {d} bytes", .{ name, @alignOf(T) });
    return p[0..len];
}

fn sliceMut(comptime T: type, ptr: ?[*]T, len: usize, name: []const u8) Error![]T {
    const s = try slice(T, ptr, len, name);
    return @constCast(s);
}

fn copyText(text: []const u8, buf: ?[*]u8, cap: usize, out_len: ?*usize) Error!void {
    const dst = try sliceMut(u8, buf, cap, "buf");
    const n = @min(text.len, dst.len);
    @memcpy(dst[0..n], text[0..n]);
    if (out_len) |o| o.* = text.len;
}

fn checkShape(rows: usize, cols: usize, w_len: usize, x_len: usize, y_len: usize) Error!void {
    const need = std.math.mul(usize, rows, cols) catch
        return status.fail(error.InvalidArgument, "rows {d} x cols {d} overflows", .{ rows, cols });
    if (w_len != need) return status.fail(error.LengthMismatch, "w has {d} elements, expected rows*cols = {d}", .{ w_len, need });
    if (x_len != cols) return status.fail(error.LengthMismatch, "x has {d} elements, expected cols = {d}", .{ x_len, cols });
    if (y_len != rows) return status.fail(error.LengthMismatch, "y has {d} elements, expected rows = {d}", .{ y_len, rows });
}

// ---------------------------------------------------------------------------
// Bodies: plain Zig returning errors; the exports below only map them.

fn cpuFeatures(out: ?*u64) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    o.* = cpu.detect();
}

fn buildSupported(out: ?*u32) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    o.* = @intFromBool(cpu.buildSupported());
}

fn dotF32(a: ?[*]const f32, a_len: usize, b: ?[*]const f32, b_len: usize, out: ?*f32) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    if (a_len != b_len) return status.fail(error.LengthMismatch, "a has {d} elements, b has {d}", .{ a_len, b_len });
    o.* = f32k.dot(try slice(f32, a, a_len, "a"), try slice(f32, b, b_len, "b"));
}

fn matvecAny(comptime W: type, w: ?[*]const W, w_len: usize, x: ?[*]const f32, x_len: usize, y: ?[*]f32, y_len: usize, rows: usize, cols: usize) Error!void {
    try checkShape(rows, cols, w_len, x_len, y_len);
    const ws = try slice(W, w, w_len, "w");
    const xs = try slice(f32, x, x_len, "x");
    const ys = try sliceMut(f32, y, y_len, "y");
    switch (W) {
        f32 => matvec.matvecF32(ws, xs, ys),
        // Activations rounded to f16 once, as every F16 matvec (dispatch.zig).
        f16 => try dispatch.matvec(null, .f16, std.mem.sliceAsBytes(ws), xs, ys, rows, cols),
        else => @compileError("no matvec for " ++ @typeName(W)),
    }
}

/// A thread pool handle crosses the boundary as `?*anyopaque`; null means "no pool".
fn poolFrom(h: ?*anyopaque) ?*threads.Pool {
    return @ptrCast(@alignCast(h));
}

fn poolCreate(count: u32, out: ?*?*anyopaque) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    o.* = null;
    o.* = threads.Pool.create(std.heap.page_allocator, count) catch |err| return switch (err) {
        error.InvalidArgument => status.fail(error.InvalidArgument, "threads must be 1..{d}, got {d}", .{ threads.max_threads, count }),
        error.OutOfMemory => status.fail(error.OutOfMemory, "no memory for a pool of {d} threads", .{count}),
        error.SystemResources => status.fail(error.OutOfMemory, "could not start {d} threads", .{count}),
    };
}

fn quantizeAny(type_id: u32, src: ?[*]const f32, n: usize, dst: ?[*]u8, dst_len: usize) Error!void {
    try dispatch.quantize(@enumFromInt(type_id), try slice(f32, src, n, "src"), try sliceMut(u8, dst, dst_len, "dst"));
}

fn dequantizeAny(type_id: u32, src: ?[*]const u8, src_len: usize, dst: ?[*]f32, n: usize) Error!void {
    try dispatch.dequantize(@enumFromInt(type_id), try slice(u8, src, src_len, "src"), try sliceMut(f32, dst, n, "dst"));
}

fn matvecQuant(pool: ?*anyopaque, type_id: u32, w: ?[*]const u8, w_len: usize, x: ?[*]const f32, x_len: usize, y: ?[*]f32, y_len: usize, rows: usize, cols: usize) Error!void {
    try dispatch.matvec(poolFrom(pool), @enumFromInt(type_id), try slice(u8, w, w_len, "w"), try slice(f32, x, x_len, "x"), try sliceMut(f32, y, y_len, "y"), rows, cols);
}

fn matmulQuant(pool: ?*anyopaque, type_id: u32, w: ?[*]const u8, w_len: usize, x: ?[*]const f32, x_len: usize, y: ?[*]f32, y_len: usize, rows: usize, cols: usize, n_tokens: usize) Error!void {
    try dispatch.matmul(poolFrom(pool), @enumFromInt(type_id), try slice(u8, w, w_len, "w"), try slice(f32, x, x_len, "x"), try sliceMut(f32, y, y_len, "y"), rows, cols, n_tokens);
}

/// One product of `emoe_matmul_many`, as `emoe_matmul`'s arguments (80 bytes, all fields 8-byte words).
pub const MulDesc = extern struct {
    type_id: u64,
    w: ?[*]const u8,
    w_len: usize,
    x: ?[*]const f32,
    x_len: usize,
    y: ?[*]f32,
    y_len: usize,
    rows: usize,
    cols: usize,
    n_tokens: usize,
};

fn matmulMany(pool: ?*anyopaque, descs: ?[*]const MulDesc, n: usize) Error!void {
    const ds = try slice(MulDesc, descs, n, "descs");
    var fallback = std.heap.stackFallback(64 * @sizeOf(dispatch.Mul), std.heap.page_allocator);
    const alloc = fallback.get();
    const muls = alloc.alloc(dispatch.Mul, n) catch return status.fail(error.OutOfMemory, "matmul_many: no memory for {d} products", .{n});
    defer alloc.free(muls);
    for (ds, muls, 0..) |d, *m, i| {
        if (d.type_id > std.math.maxInt(u32)) return status.fail(error.InvalidArgument, "matmul_many: product {d} has type id {d}", .{ i, d.type_id });
        m.* = .{
            .t = @enumFromInt(@as(u32, @intCast(d.type_id))),
            .w = try slice(u8, d.w, d.w_len, "w"),
            .x = try slice(f32, d.x, d.x_len, "x"),
            .y = try sliceMut(f32, d.y, d.y_len, "y"),
            .rows = d.rows,
            .cols = d.cols,
            .n_tokens = d.n_tokens,
        };
    }
    try dispatch.matmulMany(poolFrom(pool), muls);
}

fn rmsNormAny(x: ?[*]const f32, x_len: usize, w: ?[*]const f32, w_len: usize, out: ?[*]f32, out_len: usize, n: usize, eps: f32) Error!void {
    try norm.rmsNorm(try slice(f32, x, x_len, "x"), try slice(f32, w, w_len, "w"), eps, n, try sliceMut(f32, out, out_len, "out"));
}

fn ropeAny(x: ?[*]f32, x_len: usize, pos: ?[*]const i32, n_tokens: usize, n_heads: usize, head_dim: usize, n_dims: usize, base: f32, mode: u32) Error!void {
    try rope_k.rope(try sliceMut(f32, x, x_len, "x"), try slice(i32, pos, n_tokens, "pos"), .{ .n_heads = n_heads, .head_dim = head_dim, .n_dims = n_dims, .base = base, .mode = @enumFromInt(mode) });
}

fn swigluAny(g: ?[*]const f32, g_len: usize, u: ?[*]const f32, u_len: usize, out: ?[*]f32, out_len: usize) Error!void {
    try act.swiglu(try slice(f32, g, g_len, "g"), try slice(f32, u, u_len, "u"), try sliceMut(f32, out, out_len, "out"));
}

fn softmaxAny(x: ?[*]f32, x_len: usize, n: usize, scale: f32) Error!void {
    try act.softmax(try sliceMut(f32, x, x_len, "x"), n, scale);
}

fn attentionAny(pool: ?*anyopaque, kv_type: u32, q: ?[*]const f32, q_len: usize, k: ?[*]const u8, k_len: usize, v: ?[*]const u8, v_len: usize, out: ?[*]f32, out_len: usize, n_head: usize, n_head_kv: usize, head_dim: usize, n_kv: usize, scale: f32) Error!void {
    try attention_k.attention(poolFrom(pool), @enumFromInt(kv_type), try slice(f32, q, q_len, "q"), try slice(u8, k, k_len, "k"), try slice(u8, v, v_len, "v"), try sliceMut(f32, out, out_len, "out"), .{ .n_head = n_head, .n_head_kv = n_head_kv, .head_dim = head_dim, .n_kv = n_kv, .scale = scale });
}

fn storeFrom(h: ?*anyopaque) Error!*store.Store {
    const p = h orelse return status.fail(error.NullPointer, "store handle is null", .{});
    return @ptrCast(@alignCast(p));
}

fn storeOpen(path: ?[*]const u8, path_len: usize, opts: ?*const store.Options, out: ?*?*anyopaque) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    const op = opts orelse return status.fail(error.NullPointer, "options are null", .{});
    const s = try store.Store.open(std.heap.c_allocator, try slice(u8, path, path_len, "path"), op.*);
    o.* = s;
}

fn storeSubmit(h: ?*anyopaque, slot: u32, offset: u64, len: u64, expected: u64, speculative: u32) Error!void {
    if (speculative > 1) return status.fail(error.InvalidArgument, "speculative must be 0 or 1, got {d}", .{speculative});
    try (try storeFrom(h)).submit(slot, offset, len, expected, speculative == 1);
}

fn storeWait(h: ?*anyopaque, slot: u32, out: ?*usize) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    o.* = @intFromPtr((try (try storeFrom(h)).wait(slot)).ptr);
}

fn storeStats(h: ?*anyopaque, out: ?*store.Stats) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    o.* = (try storeFrom(h)).stats;
}

fn storeCancel(h: ?*anyopaque, slot: u32, in_flight: u32, out: ?*u32) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    if (in_flight > 1) return status.fail(error.InvalidArgument, "in_flight must be 0 or 1, got {d}", .{in_flight});
    o.* = @intFromBool(try (try storeFrom(h)).cancel(slot, in_flight == 1));
}

fn checksum64(ptr: ?[*]const u8, len: usize, out: ?*u64) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    o.* = checksum.hash64(try slice(u8, ptr, len, "bytes"));
}

// ---------------------------------------------------------------------------
// Exports

/// u32 emoe_abi_version(void)
export fn emoe_abi_version() u32 {
    return abi_version;
}

/// i32 emoe_last_error(u8* buf, usize cap, usize* out_len): copies the calling
/// thread's last failure text (cut to `cap`), writes its full length.
export fn emoe_last_error(buf: ?[*]u8, cap: usize, out_len: ?*usize) i32 {
    return status.call(copyText(status.lastMessage(), buf, cap, out_len));
}

/// i32 emoe_cpu_features(u64* out): bitmask of cpu.Feature for this CPU.
export fn emoe_cpu_features(out: ?*u64) i32 {
    status.clear();
    return status.call(cpuFeatures(out));
}

/// i32 emoe_build_variant(u8* buf, usize cap, usize* out_len): instruction set
/// this library was compiled for, e.g. "x86_64-avx2".
export fn emoe_build_variant(buf: ?[*]u8, cap: usize, out_len: ?*usize) i32 {
    status.clear();
    return status.call(copyText(cpu.variantName(), buf, cap, out_len));
}

/// i32 emoe_build_supported(u32* out): 1 if this CPU runs this build's code.
export fn emoe_build_supported(out: ?*u32) i32 {
    status.clear();
    return status.call(buildSupported(out));
}

/// i32 emoe_dot_f32(f32* a, usize a_len, f32* b, usize b_len, f32* out)
export fn emoe_dot_f32(a: ?[*]const f32, a_len: usize, b: ?[*]const f32, b_len: usize, out: ?*f32) i32 {
    status.clear();
    return status.call(dotF32(a, a_len, b, b_len, out));
}

/// i32 emoe_matvec_f32(f32* w, usize w_len, f32* x, usize x_len, f32* y, usize y_len, usize rows, usize cols)
export fn emoe_matvec_f32(w: ?[*]const f32, w_len: usize, x: ?[*]const f32, x_len: usize, y: ?[*]f32, y_len: usize, rows: usize, cols: usize) i32 {
    status.clear();
    return status.call(matvecAny(f32, w, w_len, x, x_len, y, y_len, rows, cols));
}

/// i32 emoe_matvec_f16(u16* w, usize w_len, f32* x, usize x_len, f32* y, usize y_len, usize rows, usize cols)
/// (x is rounded to f16 first, as GGML's F16 matvec)
export fn emoe_matvec_f16(w: ?[*]const f16, w_len: usize, x: ?[*]const f32, x_len: usize, y: ?[*]f32, y_len: usize, rows: usize, cols: usize) i32 {
    status.clear();
    return status.call(matvecAny(f16, w, w_len, x, x_len, y, y_len, rows, cols));
}

/// i32 emoe_pool_create(u32 threads, void** out): a fixed pool of
/// `threads` (1..256, the calling thread included), all allocated now.
export fn emoe_pool_create(count: u32, out: ?*?*anyopaque) i32 {
    status.clear();
    return status.call(poolCreate(count, out));
}

/// i32 emoe_pool_destroy(void* pool): joins the workers and frees the
/// pool; null is a no-op.
export fn emoe_pool_destroy(pool: ?*anyopaque) i32 {
    status.clear();
    if (poolFrom(pool)) |p| p.destroy();
    return 0;
}

/// i32 emoe_quantize(u32 type, f32* src, usize n, u8* dst, usize dst_len):
/// f32 to a GGML type; dst_len must be the type's bytes for n elements.
export fn emoe_quantize(type_id: u32, src: ?[*]const f32, n: usize, dst: ?[*]u8, dst_len: usize) i32 {
    status.clear();
    return status.call(quantizeAny(type_id, src, n, dst, dst_len));
}

/// i32 emoe_dequantize(u32 type, u8* src, usize src_len, f32* dst, usize n)
export fn emoe_dequantize(type_id: u32, src: ?[*]const u8, src_len: usize, dst: ?[*]f32, n: usize) i32 {
    status.clear();
    return status.call(dequantizeAny(type_id, src, src_len, dst, n));
}

/// i32 emoe_matvec(void* pool, u32 type, u8* w, usize w_len, f32* x, usize x_len,
/// f32* y, usize y_len, usize rows, usize cols): y = W·x for W of any GGML
/// type (rows of rowBytes(cols) bytes); pool may be null (calling thread only).
export fn emoe_matvec(pool: ?*anyopaque, type_id: u32, w: ?[*]const u8, w_len: usize, x: ?[*]const f32, x_len: usize, y: ?[*]f32, y_len: usize, rows: usize, cols: usize) i32 {
    status.clear();
    return status.call(matvecQuant(pool, type_id, w, w_len, x, x_len, y, y_len, rows, cols));
}

/// i32 emoe_store_open(u8* path, usize path_len, StoreOptions* opts, void** out): opens the
/// model file and allocates the slot arena.
export fn emoe_store_open(path: ?[*]const u8, path_len: usize, opts: ?*const store.Options, out: ?*?*anyopaque) i32 {
    status.clear();
    return status.call(storeOpen(path, path_len, opts, out));
}

/// i32 emoe_store_close(void* store): waits for reads in flight, frees everything. Null is a no-op.
export fn emoe_store_close(h: ?*anyopaque) i32 {
    status.clear();
    if (h == null) return 0;
    (storeFrom(h) catch unreachable).close();
    return 0;
}

/// i32 emoe_store_submit(void* store, u32 slot, u64 offset, u64 len, u64 checksum, u32 speculative):
/// starts reading file bytes offset..offset+len into `slot`; checksum 0 skips verification;
/// speculative 1 marks a prefetch, which yields to needed reads.
export fn emoe_store_submit(h: ?*anyopaque, slot: u32, offset: u64, len: u64, expected: u64, speculative: u32) i32 {
    status.clear();
    return status.call(storeSubmit(h, slot, offset, len, expected, speculative));
}

/// i32 emoe_store_wait(void* store, u32 slot, usize* out_addr): blocks until the slot is
/// loaded and verified; writes the address of its first byte.
export fn emoe_store_wait(h: ?*anyopaque, slot: u32, out: ?*usize) i32 {
    status.clear();
    return status.call(storeWait(h, slot, out));
}

/// i32 emoe_store_poll(void* store): reaps finished reads without blocking.
export fn emoe_store_poll(h: ?*anyopaque) i32 {
    status.clear();
    return status.call(if (storeFrom(h)) |s| s.poll() else |e| e);
}

/// i32 emoe_store_stats(void* store, StoreStats* out)
export fn emoe_store_stats(h: ?*anyopaque, out: ?*store.Stats) i32 {
    status.clear();
    return status.call(storeStats(h, out));
}

/// i32 emoe_store_need(void* store, u32 slot): the read into `slot` is needed: if still queued it
/// moves to the front of the queue and starts if there is room (a prefetch the router picked).
export fn emoe_store_need(h: ?*anyopaque, slot: u32) i32 {
    status.clear();
    return status.call(if (storeFrom(h)) |s| s.need(slot) else |e| e);
}

/// i32 emoe_store_cancel(void* store, u32 slot, u32 in_flight, u32* out_cancelled): stops the
/// read into `slot` if it has not completed (a queued read is dropped; one in flight is cancelled
/// if in_flight is 1, else left alone); writes 1 if a read was stopped, else 0 (the slot is as it was).
export fn emoe_store_cancel(h: ?*anyopaque, slot: u32, in_flight: u32, out: ?*u32) i32 {
    status.clear();
    return status.call(storeCancel(h, slot, in_flight, out));
}

/// i32 emoe_checksum64(u8* bytes, usize len, u64* out): XXH64 (seed 0) of the bytes.
export fn emoe_checksum64(ptr: ?[*]const u8, len: usize, out: ?*u64) i32 {
    status.clear();
    return status.call(checksum64(ptr, len, out));
}

/// i32 emoe_matmul(void* pool, u32 type, u8* w, usize w_len, f32* x, usize x_len,
/// f32* y, usize y_len, usize rows, usize cols, usize n_tokens): Y[i] = W·X[i]
/// for n_tokens tokens (x: n_tokens × cols, y: n_tokens × rows, token-major);
/// each Y[i] is bit-identical to emoe_matvec of X[i]; pool may be null.
export fn emoe_matmul(pool: ?*anyopaque, type_id: u32, w: ?[*]const u8, w_len: usize, x: ?[*]const f32, x_len: usize, y: ?[*]f32, y_len: usize, rows: usize, cols: usize, n_tokens: usize) i32 {
    status.clear();
    return status.call(matmulQuant(pool, type_id, w, w_len, x, x_len, y, y_len, rows, cols, n_tokens));
}

/// i32 emoe_matmul_many(void* pool, MulDesc* descs, usize n): every product of
/// descs (each as emoe_matmul's arguments: u64 type, u8* w, usize w_len, f32* x,
/// usize x_len, f32* y, usize y_len, usize rows, usize cols, usize n_tokens) in
/// one pass over the pool; each output bit-identical to emoe_matmul of its
/// product alone; outputs must not overlap.
export fn emoe_matmul_many(pool: ?*anyopaque, descs: ?[*]const MulDesc, n: usize) i32 {
    status.clear();
    return status.call(matmulMany(pool, descs, n));
}

/// i32 emoe_advise_huge_pages(u8* bytes, usize len, usize* out_covered): backs the whole 2 MiB
/// pages inside a fresh zeroed buffer with transparent huge pages: they are advised and dropped,
/// so they read as zero and come back huge when touched (call before filling it); writes how many
/// bytes were covered (0 where the kernel has no huge pages or refuses).
export fn emoe_advise_huge_pages(ptr: ?[*]u8, len: usize, out: ?*usize) i32 {
    status.clear();
    return status.call(adviseHuge(ptr, len, out));
}

fn adviseHuge(ptr: ?[*]u8, len: usize, out: ?*usize) Error!void {
    const o = out orelse return status.fail(error.NullPointer, "out is null", .{});
    o.* = huge_pages.advise(try sliceMut(u8, ptr, len, "bytes"));
}

/// i32 emoe_rms_norm(f32* x, usize x_len, f32* w, usize w_len, f32* out, usize out_len, usize n, f32 eps):
/// every row of n elements of x to x / sqrt(mean(x²) + eps) * w (w of n elements, or none when w_len is 0),
/// as GGML's rms_norm then mul; out may be x.
export fn emoe_rms_norm(x: ?[*]const f32, x_len: usize, w: ?[*]const f32, w_len: usize, out: ?[*]f32, out_len: usize, n: usize, eps: f32) i32 {
    status.clear();
    return status.call(rmsNormAny(x, x_len, w, w_len, out, out_len, n, eps));
}

/// i32 emoe_rope(f32* x, usize x_len, i32* pos, usize n_tokens, usize n_heads, usize head_dim, usize n_dims,
/// f32 base, u32 mode): rotary embedding in place of n_tokens tokens of n_heads heads at positions pos, over
/// the first n_dims dims of each head; mode 0 (GGML's NORM) or 2 (NEOX).
export fn emoe_rope(x: ?[*]f32, x_len: usize, pos: ?[*]const i32, n_tokens: usize, n_heads: usize, head_dim: usize, n_dims: usize, base: f32, mode: u32) i32 {
    status.clear();
    return status.call(ropeAny(x, x_len, pos, n_tokens, n_heads, head_dim, n_dims, base, mode));
}

/// i32 emoe_swiglu(f32* g, usize g_len, f32* u, usize u_len, f32* out, usize out_len): out = silu(g) * u.
export fn emoe_swiglu(g: ?[*]const f32, g_len: usize, u: ?[*]const f32, u_len: usize, out: ?[*]f32, out_len: usize) i32 {
    status.clear();
    return status.call(swigluAny(g, g_len, u, u_len, out, out_len));
}

/// i32 emoe_softmax(f32* x, usize x_len, usize n, f32 scale): every row of n elements to softmax(row * scale), in place.
export fn emoe_softmax(x: ?[*]f32, x_len: usize, n: usize, scale: f32) i32 {
    status.clear();
    return status.call(softmaxAny(x, x_len, n, scale));
}

/// i32 emoe_attention(void* pool, u32 kv_type, f32* q, usize q_len, u8* k, usize k_len, u8* v, usize v_len,
/// f32* out, usize out_len, usize n_head, usize n_head_kv, usize head_dim, usize n_kv, f32 scale): one query
/// token over n_kv cached positions (position-major, n_head_kv × head_dim each, kv_type 0 = f32 or 1 = f16);
/// heads split over pool (may be null).
export fn emoe_attention(pool: ?*anyopaque, kv_type: u32, q: ?[*]const f32, q_len: usize, k: ?[*]const u8, k_len: usize, v: ?[*]const u8, v_len: usize, out: ?[*]f32, out_len: usize, n_head: usize, n_head_kv: usize, head_dim: usize, n_kv: usize, scale: f32) i32 {
    status.clear();
    return status.call(attentionAny(pool, kv_type, q, q_len, k, k_len, v, v_len, out, out_len, n_head, n_head_kv, head_dim, n_kv, scale));
}

test {
    std.testing.refAllDecls(@This());
    _ = status;
    _ = cpu;
    _ = matvec;
    _ = f32k;
    _ = @import("huge_pages.zig");
    _ = @import("kernels/f16.zig");
    _ = @import("kernels/types.zig");
    _ = @import("kernels/qdot.zig");
    _ = @import("kernels/q8_0.zig");
    _ = @import("kernels/q8_1.zig");
    _ = @import("kernels/q4_0.zig");
    _ = @import("kernels/q4_1.zig");
    _ = @import("kernels/q5_0.zig");
    _ = @import("kernels/q5_1.zig");
    _ = @import("kernels/bf16.zig");
    _ = @import("kernels/dispatch.zig");
    _ = @import("threads.zig");
    _ = @import("io/store.zig");
    _ = @import("io/checksum.zig");
    _ = @import("kernels/kquant.zig");
    _ = @import("kernels/q8_k.zig");
    _ = @import("kernels/q4_k.zig");
    _ = @import("kernels/q5_k.zig");
    _ = @import("kernels/q6_k.zig");
    _ = @import("kernels/q3_k.zig");
    _ = @import("kernels/q2_k.zig");
    _ = norm;
    _ = rope_k;
    _ = act;
    _ = attention_k;
}

test "exports reject bad shapes with a message" {
    const w = [_]f32{ 1, 2, 3, 4 };
    const x = [_]f32{ 1, 1 };
    var y: [3]f32 = undefined;
    const r = emoe_matvec_f32(&w, w.len, &x, x.len, &y, y.len, 3, 2);
    try std.testing.expectEqual(@intFromEnum(status.Status.invalid_argument), r);
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "expected rows*cols = 6") != null);
    const ok = emoe_matvec_f32(&w, w.len, &x, x.len, &y, 2, 2, 2);
    try std.testing.expectEqual(@as(i32, 0), ok);
    try std.testing.expectEqual(@as(f32, 3), y[0]);
    try std.testing.expectEqual(@as(f32, 7), y[1]);
    const huge = emoe_matvec_f32(&w, w.len, &x, x.len, &y, 2, std.math.maxInt(usize), 2);
    try std.testing.expectEqual(@intFromEnum(status.Status.invalid_argument), huge);
    const nul = emoe_dot_f32(null, 4, &w, 4, &y[0]);
    try std.testing.expectEqual(@intFromEnum(status.Status.invalid_argument), nul);
}

test "pool exports: create, refuse 0 threads, null-safe destroy" {
    var pool: ?*anyopaque = null;
    try std.testing.expectEqual(@as(i32, 0), emoe_pool_create(2, &pool));
    try std.testing.expect(pool != null);
    try std.testing.expectEqual(@as(i32, 0), emoe_pool_destroy(pool));
    try std.testing.expectEqual(@as(i32, 0), emoe_pool_destroy(null));
    try std.testing.expectEqual(@intFromEnum(status.Status.invalid_argument), emoe_pool_create(0, &pool));
    try std.testing.expect(pool == null);
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "threads must be 1..256, got 0") != null);
}
