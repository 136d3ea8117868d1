// The view-only filter on the RFB client stream: pictures pass, input never does.
import { describe, expect, it } from "vitest";
import { ViewOnlyFilter, type FilterResult } from "./rfb-view-only.ts";

const handshake = Buffer.concat([Buffer.from("RFB 003.008\n"), Buffer.from([1]), Buffer.from([0])]);
const setPixelFormat = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.alloc(16, 7)]);
const setEncodings = Buffer.from([2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21]);
const updateRequest = Buffer.from([3, 1, 0, 0, 0, 0, 2, 208, 1, 144]);
const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
const pointer = Buffer.from([5, 1, 0, 10, 0, 20]);
const cutText = (text: string) => Buffer.concat([Buffer.from([6, 0, 0, 0]), Buffer.from([0, 0, 0, text.length]), Buffer.from(text)]);
const qemuKey = Buffer.from([255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]);
const fence = Buffer.from([248, 0, 0, 0, 0, 0, 0, 1, 2, 0xaa, 0xbb]);
const setDesktopSize = Buffer.concat([Buffer.from([251, 0, 4, 0, 3, 0, 1, 0]), Buffer.alloc(16)]);

function forwarded(result: FilterResult): Buffer {
  if ("error" in result) throw new Error(result.error);
  return result.forward;
}

describe("ViewOnlyFilter", () => {
  it("passes the handshake (asking to share) and requests for pictures, drops every kind of input", () => {
    const filter = new ViewOnlyFilter();
    const out = forwarded(
      filter.push(Buffer.concat([handshake, setPixelFormat, setEncodings, key, pointer, cutText("rm -rf /\n"), qemuKey, setDesktopSize, fence, updateRequest])),
    );
    const sharedHandshake = Buffer.concat([Buffer.from("RFB 003.008\n"), Buffer.from([1, 1])]);
    expect(out).toEqual(Buffer.concat([sharedHandshake, setPixelFormat, setEncodings, fence, updateRequest]));
  });

  it("gives the same answer when the stream arrives a byte at a time", () => {
    const whole = Buffer.concat([handshake, setEncodings, pointer, cutText("secret"), updateRequest, key, updateRequest]);
    const filter = new ViewOnlyFilter();
    const out = Buffer.concat([...whole].map((byte) => forwarded(filter.push(Buffer.from([byte])))));
    expect(out).toEqual(Buffer.concat([Buffer.from("RFB 003.008\n"), Buffer.from([1, 1]), setEncodings, updateRequest, updateRequest]));
  });

  it("discards a huge clipboard message as it arrives instead of buffering it", () => {
    const filter = new ViewOnlyFilter();
    forwarded(filter.push(handshake));
    const header = Buffer.from([6, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
    expect(forwarded(filter.push(Buffer.concat([header, Buffer.alloc(1024, 0x41)])))).toHaveLength(0);
    for (let i = 0; i < 64; i++) expect(forwarded(filter.push(Buffer.alloc(64 * 1024, 0x41)))).toHaveLength(0);
  });

  it("ends the display on a version it does not know or a message it cannot size", () => {
    expect(new ViewOnlyFilter().push(Buffer.from("RFB 003.003\n"))).toHaveProperty("error");
    expect(new ViewOnlyFilter().push(Buffer.from("GET / HTTP/1.1\r\n"))).toHaveProperty("error");
    const filter = new ViewOnlyFilter();
    forwarded(filter.push(handshake));
    expect(filter.push(Buffer.from([77, 0, 0, 0]))).toHaveProperty("error");
    const qemu = new ViewOnlyFilter();
    forwarded(qemu.push(handshake));
    expect(qemu.push(Buffer.from([255, 9, 0, 0]))).toHaveProperty("error");
  });
});
