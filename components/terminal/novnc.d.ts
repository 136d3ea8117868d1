// The part of noVNC's RFB client (core/rfb.js, @novnc/novnc 1.7) the Display tab uses; the
// package ships no types. See its docs/API.md.
declare module "@novnc/novnc" {
  export interface RfbOptions {
    shared?: boolean;
    credentials?: { username?: string; password?: string; target?: string };
    repeaterID?: string;
    wsProtocols?: string[];
  }

  export interface RfbDisconnectEvent extends Event {
    readonly detail: { clean: boolean };
  }

  export default class RFB {
    /** `urlOrChannel`: a ws(s):// URL, or a WebSocket already opened by the caller. */
    constructor(target: HTMLElement, urlOrChannel: string | WebSocket, options?: RfbOptions);
    viewOnly: boolean;
    scaleViewport: boolean;
    clipViewport: boolean;
    resizeSession: boolean;
    focusOnClick: boolean;
    background: string;
    disconnect(): void;
    sendCtrlAltDel(): void;
    focus(): void;
    addEventListener(type: "connect", listener: (event: Event) => void): void;
    addEventListener(type: "disconnect", listener: (event: RfbDisconnectEvent) => void): void;
    addEventListener(type: "desktopname", listener: (event: Event & { detail: { name: string } }) => void): void;
  }
}
