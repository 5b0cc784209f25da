//! The pack's expert-blob checksum: XXH64 with seed 0 over the blob's bytes
//! exactly as on disk (tensors and the zero padding between them).
const std = @import("std");

pub fn checksum64(bytes: []const u8) u64 {
    return std.hash.XxHash64.hash(0, bytes);
}

test "matches the reference XXH64 vectors" {
    try std.testing.expectEqual(@as(u64, 0xEF46DB3751D8E999), checksum64(""));
    try std.testing.expectEqual(@as(u64, 0x44BC2CF5AD770999), checksum64("abc"));
}
