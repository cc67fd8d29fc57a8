import XCTest
final class PlaceholderScenarioTests: XCTestCase { func testNothing() {} }
