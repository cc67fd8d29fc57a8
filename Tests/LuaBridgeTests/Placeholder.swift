import XCTest
final class PlaceholderLuaBridgeTests: XCTestCase { func testNothing() {} }
