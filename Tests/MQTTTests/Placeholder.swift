import XCTest
final class PlaceholderMQTTTests: XCTestCase { func testNothing() {} }
