// The sim library grows with the replay issue (pcap I/O, replay driver, outputs); this unit keeps
// it a valid library until then.
namespace statewall::sim {
int moduleVersion() { return 1; }
}  // namespace statewall::sim
