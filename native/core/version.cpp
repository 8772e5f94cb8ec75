// Engine version string, reported by `starkv inspect` and the bench.
namespace starkv {
const char* engine_version() { return "0.1.0"; }
}  // namespace starkv
