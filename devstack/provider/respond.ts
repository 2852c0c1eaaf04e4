/**
 * The last step of every answer: a fixed body gets its Content-Length (as providers send non-streamed
 * answers), a live body gets a hook that marks the request finished once the body has been sent.
 */

/** A fixed answer with its Content-Length, as providers send non-streamed answers. */
export async function withLength(response: Response): Promise<Response> {
  if (!response.body) return response;
  const bytes = new Uint8Array(await response.arrayBuffer());
  const headers = new Headers(response.headers);
  headers.set("content-length", String(bytes.length));
  return new Response(bytes, { status: response.status, headers });
}

/** The response with `onDone` run once its body has been read to the end, failed, or been cancelled. */
export function finalized(response: Response, onDone: () => void): Response {
  const reader = response.body!.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          onDone();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        onDone();
        controller.error(error);
      }
    },
    async cancel(reason) {
      onDone();
      await reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: response.status, headers: response.headers });
}
