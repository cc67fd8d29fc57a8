import MQTTCore
import NIOCore

/// Decoder properties checked on every input:
/// 1. decoding never crashes (only throws `MQTTProtocolError`);
/// 2. decoding the input in one piece and in chunks (sizes from the first input byte)
///    gives the same items and the same error;
/// 3. every decoded packet re-encodes to bytes that decode to an equal packet.
/// The first byte also picks a max packet size (0 = none) for the oversized path.
enum DecoderFuzzing {
    struct Outcome: Equatable {
        var items: [MQTTInbound] = []
        var error: String?
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, chunk: Int, limit: Int?) -> Outcome {
        var decoder = MQTTPacketDecoder(maxPacketSize: limit)
        var buffer = ByteBuffer()
        var outcome = Outcome()
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
            offset = end
            do {
                while let item = try decoder.next(from: &buffer) {
                    outcome.items.append(item)
                }
            } catch let error as MQTTProtocolError {
                outcome.error = error.description
                return outcome
            } catch {
                fatalError("unexpected error type \(error)")
            }
        }
        return outcome
    }

    static func check(_ bytes: UnsafeRawBufferPointer) {
        guard let control = bytes.first else { return }
        let input = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        let limits: [Int?] = [nil, 2, 9, 64]
        let limit = limits[Int(control & 3)]
        let chunk = Int(control >> 2) + 1
        let whole = decode(input, chunk: max(1, input.count), limit: limit)
        let pieces = decode(input, chunk: chunk, limit: limit)
        precondition(whole == pieces, "fragmentation changed the result: \(whole) vs \(pieces)")
        for item in whole.items {
            guard case .packet(let packet) = item else { continue }
            var encoded = packet.encoded()
            var decoder = MQTTPacketDecoder()
            let again: MQTTInbound?
            do {
                again = try decoder.next(from: &encoded)
            } catch {
                preconditionFailure("re-encoded \(packet) does not decode: \(error)")
            }
            precondition(again == .packet(packet), "round trip changed \(packet) into \(String(describing: again))")
            precondition(encoded.readableBytes == 0, "round trip left bytes")
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    DecoderFuzzing.check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// libFuzzer's driver (in the toolchain's libclang_rt.fuzzer).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links an executable's entry point as `<module>_main`; run libFuzzer from it.
@_cdecl("MQTTDecoderFuzzer_main")
public func fuzzerMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, { data, size in fuzzDecoder(data, size) })
}
#else
import Foundation

/// Without the fuzzer: replays files given on the command line (e.g. the seed corpus)
/// through the same checks.
@main
struct CorpusReplay {
    static func main() throws {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                data.withUnsafeBytes { DecoderFuzzing.check($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }
}
#endif
