import LuaBridge

/// `node.info`, the flash functions, LFS stubs, the partition table and the 3.0
/// startup record (more-modules §1.4–§1.7), on `Runtime.device`.
extension NodeModule {
    func registerFlash(in table: inout LuaModuleTable) {
        table.function("info") { [unowned self] lua throws(LuaError) in try info(lua) }
        table.function("flashid") { lua throws(LuaError) in Self.flashid(lua) }
        table.function("flashsize") { [unowned self] lua throws(LuaError) in flashsize(lua) }
        guard profile == .v3_0 else { return }
        table.table("LFS") { lfs in
            lfs.function("list") { _ throws(LuaError) in 0 }
            lfs.function("get") { _ throws(LuaError) in 0 }
            lfs.function("reload") { [unowned self] lua throws(LuaError) in lfsReload(lua) }
            lfs.table("config") { config in
                for (name, value) in Self.lfsFields { config.integer(name, value) }
            }
        }
        table.function("flashindex") { _ throws(LuaError) in 0 }
        table.function("flashreload") { [unowned self] lua throws(LuaError) in flashreload(lua) }
        table.function("getpartitiontable") { [unowned self] lua throws(LuaError) in getpartitiontable(lua) }
        table.function("setpartitiontable") { [unowned self] lua throws(LuaError) in try setpartitiontable(lua) }
        table.function("startupcommand") { [unowned self] lua throws(LuaError) in try startupcommand(lua) }
        table.function("startup") { [unowned self] lua throws(LuaError) in try startup(lua) }
    }

    static let lfsFields = [("lfs_mapped", 0), ("lfs_base", 0), ("lfs_size", 0), ("lfs_used", 0)]

    // MARK: node.info

    /// Lua: node.info([group]) — 2.2: eight integers (SDK version, chip id, flash id,
    /// flash size in KB, mode, speed). 3.0: the same, deprecated, without a group or with
    /// "legacy"; a table for "hw", "sw_version", "build_config" and "lfs".
    private func info(_ lua: LuaState) throws(LuaError) -> Int32 {
        let group: String? = profile == .v3_0 && !lua.isNoneOrNil(1) ? try lua.checkString(1) : nil
        switch group {
        case nil, "legacy"?:
            if profile == .v3_0 {
                runtime.print("Warning, deprecated API! node.info() without parameter. It will be removed in the next version. See documentation for details.")
            }
            let version = profile.version
            for value in [version.0, version.1, version.2, runtime.options.chipID, DeviceSettings.flashID,
                          runtime.device.flashSize / 1024, DeviceSettings.flashMode, DeviceSettings.flashSpeed] {
                lua.push(value)
            }
            return 8
        case "hw"?:
            lua.newTable(fieldCapacity: 5)
            lua.setInteger("chip_id", runtime.options.chipID)
            lua.setInteger("flash_id", DeviceSettings.flashID)
            lua.setInteger("flash_size", runtime.device.flashSize / 1024)
            lua.setInteger("flash_mode", DeviceSettings.flashMode)
            lua.setInteger("flash_speed", DeviceSettings.flashSpeed)
        case "sw_version"?:
            lua.newTable(fieldCapacity: 7)
            lua.setInteger("node_version_major", 3)
            lua.setInteger("node_version_minor", 0)
            lua.setInteger("node_version_revision", 0)
            for (key, value) in [("git_branch", "release"), ("git_commit_id", "136e09739b835d6dcdf04034141d70ab755468c6"),
                                 ("git_release", "3.0.0-release_20210201"), ("git_commit_dts", "202102010145")] {
                lua.push(value)
                lua.setField(key, in: -2)
            }
        case "build_config"?:
            let names = ModuleRegistry.modules.filter { ModuleRegistry.installs($0, with: runtime.options) }.map { $0.name.lowercased() }.sorted()
            lua.newTable(fieldCapacity: 4)
            lua.push(true)
            lua.setField("ssl", in: -2)
            lua.setInteger("lfs_size", 0)
            lua.push(names.joined(separator: ","))
            lua.setField("modules", in: -2)
            lua.push("float")
            lua.setField("number_type", in: -2)
        case "lfs"?:
            lua.newTable(fieldCapacity: 4)
            for (name, value) in Self.lfsFields { lua.setInteger(name, value) }
        case let other?:
            throw .argument(1, "invalid option '\(other)'")
        }
        return 1
    }

    /// Lua: node.flashid()
    private static func flashid(_ lua: LuaState) -> Int32 {
        lua.push(DeviceSettings.flashID)
        return 1
    }

    /// Lua: node.flashsize([size]) — bytes. 2.2 first stores a valid size (256 KB to
    /// 16 MB, a power of two) given as a number; 3.0 ignores arguments.
    private func flashsize(_ lua: LuaState) -> Int32 {
        if profile == .v2_2, lua.type(at: 1) == .number, let size = lua.integer(at: 1),
           size >= 262_144, size <= 16_777_216, size & (size - 1) == 0 {
            runtime.device.flashSize = size
        }
        lua.push(runtime.device.flashSize)
        return 1
    }

    // MARK: LFS (3.0): the simulated flash has no LFS partition

    /// Lua: node.LFS.reload(image) — returns `No LFS partition allocated`, as the default
    /// image does; the host says on stderr that it cannot load LFS images.
    private func lfsReload(_ lua: LuaState) -> Int32 {
        runtime.diagnostic("node.LFS.reload: LFS images are not supported by the host (the simulated flash has no LFS partition)")
        lua.push("No LFS partition allocated")
        return 1
    }

    /// Lua: node.flashreload(image) — deprecated form of `node.LFS.reload`.
    private func flashreload(_ lua: LuaState) -> Int32 {
        runtime.print("Warning, deprecated API! node.flashreload. It will be removed soon. Use node.LFS interface instead. See documentation for details.")
        return lfsReload(lua)
    }

    // MARK: Partition table (3.0)

    /// Lua: node.getpartitiontable() — `{lfs_addr, lfs_size, spiffs_addr, spiffs_size}`.
    private func getpartitiontable(_ lua: LuaState) -> Int32 {
        let table = runtime.device.partitions
        lua.newTable(fieldCapacity: 4)
        lua.setInteger("lfs_addr", table.lfsAddress)
        lua.setInteger("lfs_size", table.lfsSize)
        lua.setInteger("spiffs_addr", table.spiffsAddress)
        lua.setInteger("spiffs_size", table.spiffsSize)
        return 1
    }

    /// Lua: node.setpartitiontable(t) — checks and stores the table (seen only by
    /// `getpartitiontable`), then a simulated restart; never returns on the device.
    private func setpartitiontable(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard lua.type(at: 1) == .table else { throw .argument(1, "must be table") }
        var table = runtime.device.partitions
        var valid = true
        lua.forEach(in: 1) {
            guard let key = lua.type(at: -2) == .string ? lua.string(at: -2) : nil,
                  lua.type(at: -1) == .number || lua.isStringLike(-1), let value = lua.integer(at: -1) else {
                valid = false
                return false
            }
            switch key {
            case "lfs_addr": table.lfsAddress = value
            case "lfs_size": table.lfsSize = value
            case "spiffs_addr": table.spiffsAddress = value
            case "spiffs_size": table.spiffsSize = value
            default:
                valid = false
                return false
            }
            return true
        }
        guard valid else { throw .argument(1, "invalid partition setting") }
        let flash = runtime.device.flashSize
        let values = [table.lfsAddress, table.lfsSize, table.spiffsAddress, table.spiffsSize]
        let aligned = values.allSatisfy { $0 >= 0 && $0 % 4096 == 0 }
        let lfsEnd = table.lfsAddress + table.lfsSize
        let spiffsEnd = table.spiffsAddress + table.spiffsSize
        let overlap = table.lfsSize > 0 && table.spiffsSize > 0
            && table.lfsAddress < spiffsEnd && table.spiffsAddress < lfsEnd
        guard aligned, !overlap, lfsEnd <= flash, spiffsEnd <= flash else {
            throw .message("Partition value out of range")
        }
        runtime.device.partitions = table
        runtime.reboot(reason: "node.setpartitiontable()")
        return 0
    }

    // MARK: Startup record (3.0)

    /// Lua: node.startupcommand(s) — stores the boot command; true. The host stores it
    /// only: every boot runs the script given on its command line.
    private func startupcommand(_ lua: LuaState) throws(LuaError) -> Int32 {
        runtime.device.startup.command = try lua.checkBytes(1)
        lua.push(true)
        return 1
    }

    /// Lua: node.startup([t]) — the startup record (`banner`, `delay_mount`, `frequency`,
    /// `command`); a table replaces it (`{}` resets everything). Stored only.
    private func startup(_ lua: LuaState) throws(LuaError) -> Int32 {
        if !lua.isNoneOrNil(1) {
            guard lua.type(at: 1) == .table else { throw lua.typeError(1, expected: "table") }
            var record = DeviceSettings.Startup()
            lua.forEach(in: 1) {
                switch lua.type(at: -2) == .string ? lua.string(at: -2) : nil {
                case "banner": record.banner = lua.boolean(at: -1)
                case "delay_mount": record.delayMount = lua.boolean(at: -1)
                case "frequency": record.frequency = lua.integer(at: -1) == 160 ? 160 : 80
                case "command": record.command = lua.bytes(at: -1)
                default: break
                }
                return true
            }
            runtime.device.startup = record
        }
        let record = runtime.device.startup
        lua.newTable(fieldCapacity: 4)
        lua.push(record.banner)
        lua.setField("banner", in: -2)
        lua.push(record.delayMount)
        lua.setField("delay_mount", in: -2)
        lua.setInteger("frequency", record.frequency)
        if let command = record.command {
            lua.push(command)
            lua.setField("command", in: -2)
        }
        return 1
    }
}
