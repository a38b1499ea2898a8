export {
  UdpDriver, SOCKET_BUFFER_BYTES_DEFAULT, SEND_QUEUE_MAX_DEFAULT,
  type DatagramMachine, type UdpDriverOptions, type UdpDriverStats,
} from './udp-driver.js';
export { startPeer, type StartPeerOptions, type RunningPeer } from './start-peer.js';
