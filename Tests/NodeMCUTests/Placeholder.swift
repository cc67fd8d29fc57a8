import XCTest
final class PlaceholderNodeMCUTests: XCTestCase { func testNothing() {} }
