import net from 'node:net';

/**
 * A server on a free loopback port that accepts connections and never says a word (a firewall that drops, a
 * hung host). With `swallow`, it reads and discards what it is sent, so that a client closing its side is
 * seen (`open()` counts it no more); without, it reads nothing.
 */
export async function silentServer(
  options: { swallow?: boolean } = {},
): Promise<{ port: number; open(): number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    if (options.swallow) socket.resume();
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** The connections open now. */
    open: () => sockets.size,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
