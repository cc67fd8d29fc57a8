import NodeMCU
import XCTest

/// Inputs the fuzz targets (fuzz/) found crashing the host, kept as regression tests.
final class FuzzRegressionTests: XCTestCase {
    /// LuaBridgeFuzzer: `struct.unpack` with an `init` of `math.mininteger` trapped on
    /// `init - 1` (arithmetic overflow); huge inits overflowed `position + size`.
    func testStructUnpackExtremeInit() {
        for profile in [FirmwareProfile.v2_2, .v3_0] {
            let h = RuntimeHarness(profile: profile)
            XCTAssertTrue(h.error("struct.unpack('b', 'abc', math.mininteger)").contains("data string too short"), "\(profile)")
            XCTAssertTrue(h.error("struct.unpack('i4', 'abc', math.maxinteger)").contains("data string too short"), "\(profile)")
            XCTAssertTrue(h.error("struct.unpack('b', 'abc', -5)").contains("data string too short"), "\(profile)")
            XCTAssertEqual(h.eval("select(-1, struct.unpack('', 'abc', math.maxinteger))"), "\(Int.max)")
            XCTAssertEqual(h.eval("select(-1, struct.unpack('b', 'abc', 3))"), "4")
        }
    }

    /// SJSONFuzzer: in one write, the values after the first complete document replaced
    /// it (`[1,2.5],-3,110,` decoded to 110), while written in pieces they were ignored.
    func testSJSONIgnoresWhatFollowsTheFirstDocumentInTheSameWrite() {
        for profile in [FirmwareProfile.v2_2, .v3_0] {
            let h = RuntimeHarness(profile: profile)
            XCTAssertEqual(h.eval("sjson.encode(sjson.decode('[1,2.5],-3,110,'))"), "[1,2.5]", "\(profile)")
            XCTAssertEqual(h.eval("sjson.encode(sjson.decoder():write('{\"a\":1} 7, [2]'))"), "{\"a\":1}", "\(profile)")
            XCTAssertEqual(h.eval("sjson.decode('[3]xyz')[1]"), "3", "\(profile)")
        }
    }

    /// LuaBridgeFuzzer: rtctime.set with a huge usec trapped (arithmetic overflow); the
    /// firmware reads it as a uint32_t.
    func testRTCTimeSetHugeMicroseconds() {
        for profile in [FirmwareProfile.v2_2, .v3_0] {
            let h = RuntimeHarness(profile: profile)
            XCTAssertEqual(h.error("rtctime.set(100, math.maxinteger)"), "", "\(profile)")
            XCTAssertEqual(h.error("rtctime.set(4294967295, -1)"), "", "\(profile)")
            XCTAssertEqual(h.eval("select(2, rtctime.get()) < 1000000 or select(2, rtctime.get())"), "true", "\(profile)")
        }
    }

    /// A size that overflows to a negative number in 2.2's lenient format parser trapped
    /// on a negative range in `pack` and `unpack`.
    func testStructNegativeSizes() {
        let h = RuntimeHarness(profile: .v2_2)
        XCTAssertTrue(h.error("struct.pack('c2147483648', 'abc')").contains("string too short"))
        XCTAssertTrue(h.error("struct.unpack('c2147483648', 'abc')").contains("data string too short"))
        XCTAssertTrue(h.error("struct.pack('i2147483648', 1)").contains("integral size"))
        XCTAssertTrue(h.error("struct.unpack('i2147483648', 'abcd')").contains("integral size"))
    }
}

/// LuaBridgeFuzzer: functions returning more than LUA_MINSTACK (20) values pushed past
/// the Lua stack without `lua_checkstack` and corrupted the heap (glibc abort later).
final class FuzzStackRegressionTests: XCTestCase {
    func testStructUnpackManyResults() {
        for profile in [FirmwareProfile.v2_2, .v3_0] {
            let h = RuntimeHarness(profile: profile)
            h.run("""
            local s = string.rep("\\1", 5000)
            for _ = 1, 20 do
              local r = { struct.unpack(string.rep("b", 5000), s) }
              assert(#r == 5001 and r[1] == 1 and r[5000] == 1 and r[5001] == 5001)
              collectgarbage()
            end
            ok = true
            """)
            XCTAssertEqual(h.eval("ok"), "true", "\(profile)")
        }
    }

    /// sjson.encode of tables nested past about 7 levels (a cyclic table, or 19 levels)
    /// pushed past LUA_MINSTACK: plain scripts crashed nodemcu-host with a glibc abort.
    func testSJSONEncodeDeepTables() {
        for profile in [FirmwareProfile.v2_2, .v3_0] {
            let h = RuntimeHarness(profile: profile)
            h.run("""
            local c = {}; c.self = c; c[1] = c
            for _ = 1, 2000 do
              local ok, err = pcall(sjson.encode, c)
              assert(not ok and err:find("encoder stack overflow"), tostring(err))
              local t = { k = 1 }
              for _ = 1, 18 do t = { t } end
              deep = sjson.encode(t)
            end
            ok = true
            """)
            XCTAssertEqual(h.eval("ok"), "true", "\(profile)")
            XCTAssertEqual(h.eval("deep"), String(repeating: "[", count: 18) + "{\"k\":1}" + String(repeating: "]", count: 18))
        }
    }

    func testSPIGetMisoManyResults() {
        for profile in [FirmwareProfile.v2_2, .v3_0] {
            let h = RuntimeHarness(profile: profile)
            h.run("""
            spi.setup(1, spi.MASTER, spi.CPOL_LOW, spi.CPHA_LOW, 8, 8)
            for _ = 1, 50 do
              local r = { spi.get_miso(1, 0, 8, 64) }
              assert(#r == 64 and r[64] == 255)
              collectgarbage()
            end
            ok = true
            """)
            XCTAssertEqual(h.eval("ok"), "true", "\(profile)")
        }
    }
}
