// jamsocket-client: a WebSocket to one Jamsocket room that reconnects by itself and, with a server
// that speaks `jamsocket.v1` (see PROTOCOL.md), resumes its session without losing or duplicating
// a message. No runtime dependencies: it needs `WebSocket`, `EventTarget`, `Event`,
// `crypto.getRandomValues` and (to learn why a handshake was refused) `fetch`.
/** `open`: a session opened (`resumed`: the same session as before the reconnect). */
export class RoomOpenEvent extends Event {
    clientId;
    resumed;
    detail;
    constructor(clientId, resumed) {
        super("open");
        this.clientId = clientId;
        this.resumed = resumed;
        this.detail = { clientId, resumed };
    }
}
/** `message`: one application message, decoded by the codec. */
export class RoomMessageEvent extends Event {
    data;
    constructor(data) {
        super("message");
        this.data = data;
    }
}
/**
 * `statechange`: `state` is the new state, `previous` the old one. On the way to `reconnecting`
 * (and `closed`), `code` and `reason` are those of the close that caused it (1006 when the
 * connection failed without a close frame).
 */
export class RoomStateChangeEvent extends Event {
    state;
    previous;
    code;
    reason;
    constructor(state, previous, code, reason) {
        super("statechange");
        this.state = state;
        this.previous = previous;
        this.code = code;
        this.reason = reason;
    }
}
/** `close`: the socket is closed for good (it will not reconnect). */
export class RoomCloseEvent extends Event {
    code;
    reason;
    wasClean;
    constructor(code, reason, wasClean) {
        super("close");
        this.code = code;
        this.reason = reason;
        this.wasClean = wasClean;
    }
}
/**
 * `error`: the server refused the handshake (`status` is its HTTP status, `reason` its text), or
 * something else went wrong (`status` undefined; `error` may hold the cause, and `data` the
 * message the codec could not decode).
 */
export class RoomErrorEvent extends Event {
    reason;
    status;
    error;
    data;
    constructor(reason, status, error, data) {
        super("error");
        this.reason = reason;
        this.status = status;
        this.error = error;
        this.data = data;
    }
}
/** `lost`: a new session began (the old one could not be resumed), or the room went back to an older snapshot after its server crashed; `count` messages sent before may not have been handled. */
export class RoomLostEvent extends Event {
    count;
    constructor(count) {
        super("lost");
        this.count = count;
    }
}
const V1 = "jamsocket.v1";
const TOKEN_PREFIX = "jamsocket.token.";
/** Close codes after which the socket gives up (PROTOCOL.md, "Close codes"). */
const TERMINAL_CODES = new Set([1000, 1002, 1003, 1007, 1008, 1009, 1010, 4000]);
/** HTTP answers to the probe after a failed handshake that end the socket. */
const TERMINAL_STATUSES = new Set([401, 403, 404]);
/** HTTP answers to the probe that mean "the server knows this room, try again later". */
const RETRY_STATUSES = new Set([408, 425, 426, 429, 500, 502, 503, 504]);
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
function toBytes(value) {
    if (value instanceof Uint8Array)
        return value;
    if (value instanceof ArrayBuffer)
        return new Uint8Array(value);
    if (ArrayBuffer.isView(value))
        return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    throw new TypeError("the binary codec sends Uint8Array, ArrayBuffer or ArrayBufferView values");
}
const codecs = {
    text: {
        encode: (value) => {
            if (typeof value !== "string")
                throw new TypeError("the text codec sends strings");
            return value;
        },
        decode: (data) => (typeof data === "string" ? data : textDecoder.decode(data)),
    },
    json: {
        encode: (value) => JSON.stringify(value),
        decode: (data) => JSON.parse(typeof data === "string" ? data : textDecoder.decode(data)),
    },
    binary: {
        encode: (value) => toBytes(value),
        decode: (data) => (typeof data === "string" ? textEncoder.encode(data) : data),
    },
};
/** 32 random bytes, base64url without padding (43 characters). */
function newResumeKey() {
    const bytes = new Uint8Array(32);
    globalThis.crypto.getRandomValues(bytes);
    let binary = "";
    for (const byte of bytes)
        binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
/**
 * A connection to one room, in the style of `WebSocket`: `new RoomSocket(url, room, options)`,
 * `send`, `close`, and events (`open`, `message`, `statechange`, `close`, `error`, `lost`).
 * It reconnects after abnormal closes and, under `jamsocket.v1`, resumes its session: messages
 * sent while disconnected or not yet acknowledged are delivered once, in order.
 */
export class RoomSocket extends EventTarget {
    /** The room's WebSocket URL (without the query the socket adds). */
    url;
    room;
    onopen = null;
    onmessage = null;
    onstatechange = null;
    onclose = null;
    onerror = null;
    onlost = null;
    #state = "connecting";
    #protocol = "";
    #clientId = null;
    #codec;
    #token;
    #resumeKey;
    #reconnect;
    #maxQueued;
    #connectTimeoutMs;
    #WebSocket;
    #fetch;
    #ws = null;
    /** The current connection opened (its handshake succeeded). */
    #wsOpened = false;
    /** The current connection's session is open (welcome received, or plain frames). */
    #sessionOpen = false;
    /** The next attempt offers no subprotocol: the server did not seem to know `jamsocket.v1`. */
    #tryPlain = false;
    #attempt = 0;
    #timer;
    #connectTimer;
    /** The token of the current attempt. */
    #currentToken;
    // jamsocket.v1 session state.
    /** Application messages received in this session. */
    #received = 0;
    /** The last acknowledgement sent (or `seen` given at connect). */
    #ackSent = 0;
    #ackEvery = 32;
    /** Application messages sent in this session (the number of the last one). */
    #sent = 0;
    /** The last acknowledgement received from the server. */
    #acked = 0;
    /** Sent and not acknowledged: frames numbered `#acked + 1 ..= #sent`. */
    #unacked = [];
    /** Encoded messages not sent yet (the socket was not open). */
    #pending = [];
    /** A session existed (a welcome was received) that a resume may continue. */
    #hadSession = false;
    /** A session opened once (under either protocol). */
    #everOpened = false;
    constructor(url, room, options = {}) {
        super();
        const base = new URL(url);
        const schemes = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" };
        const scheme = schemes[base.protocol];
        if (!scheme)
            throw new SyntaxError(`RoomSocket: unsupported URL scheme ${base.protocol} (use ws, wss, http or https)`);
        base.protocol = scheme;
        base.search = "";
        base.hash = "";
        base.pathname = `${base.pathname.replace(/\/+$/, "")}/ws/${encodeURIComponent(room)}`;
        this.url = base.toString();
        this.room = room;
        const codec = options.codec ?? "text";
        if (typeof codec === "string") {
            const known = codecs[codec];
            if (!known)
                throw new TypeError(`RoomSocket: unknown codec ${codec}`);
            this.#codec = known;
        }
        else {
            this.#codec = codec;
        }
        this.#token = options.token;
        this.#resumeKey = options.resume === false ? null : newResumeKey();
        this.#reconnect =
            options.reconnect === false
                ? null
                : {
                    initialDelayMs: options.reconnect?.initialDelayMs ?? 250,
                    maxDelayMs: options.reconnect?.maxDelayMs ?? 10000,
                    factor: options.reconnect?.factor ?? 2,
                };
        this.#maxQueued = options.maxQueued ?? 1000;
        this.#connectTimeoutMs = options.connectTimeoutMs ?? 10000;
        const ctor = options.WebSocket ?? globalThis.WebSocket;
        if (typeof ctor !== "function") {
            throw new TypeError("RoomSocket: no WebSocket constructor (pass options.WebSocket; Node 20 needs --experimental-websocket)");
        }
        this.#WebSocket = ctor;
        this.#fetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
        void this.#connect();
    }
    /** `connecting`, `open`, `reconnecting` or `closed`. */
    get state() {
        return this.#state;
    }
    /** The id the room gave this client (`jamsocket.v1` only; null before the first welcome or with plain frames). */
    get clientId() {
        return this.#clientId;
    }
    /** `jamsocket.v1`, `plain` (the server did not select `jamsocket.v1`: no numbering, no resume), or "" before the first connection. */
    get protocol() {
        return this.#protocol;
    }
    /** Messages the socket holds: sent while disconnected, plus sent and not yet acknowledged. */
    get bufferedCount() {
        return this.#pending.length + this.#unacked.length;
    }
    /**
     * Sends one message. While disconnected it is queued and sent after the reconnect; under
     * `jamsocket.v1` it is kept until the server acknowledges it. Throws when the socket is closed
     * or holds `maxQueued` messages already.
     */
    send(data) {
        if (this.#isClosed())
            throw new Error("RoomSocket: send() after the socket closed");
        if (this.bufferedCount >= this.#maxQueued) {
            throw new Error(`RoomSocket: ${this.bufferedCount} messages are queued or unacknowledged (maxQueued is ${this.#maxQueued}); ` +
                "wait for the connection to come back");
        }
        const encoded = this.#codec.encode(data);
        if (typeof encoded !== "string" && !(encoded instanceof Uint8Array)) {
            throw new TypeError("RoomSocket: a codec must encode to a string or a Uint8Array");
        }
        if (this.#sessionOpen && this.#ws)
            this.#transmit(encoded);
        else
            this.#pending.push(encoded);
    }
    /**
     * Closes the socket for good. The server ends the session at once (a clean close); messages
     * still queued are dropped. `close` is emitted with `code` and `reason`.
     */
    close(code = 1000, reason = "") {
        if (this.#isClosed())
            return;
        const ws = this.#ws;
        this.#detach();
        if (ws) {
            try {
                ws.close(code, reason);
            }
            catch (error) {
                // An invalid code: close as 1000 rather than leave the connection open.
                try {
                    ws.close();
                }
                catch {
                    /* already closing */
                }
                this.#finish(1000, reason, true);
                throw error;
            }
        }
        this.#finish(code, reason, true);
    }
    // ---- connecting ----
    async #connect() {
        this.#timer = undefined;
        if (this.#isClosed())
            return;
        let token;
        try {
            token = typeof this.#token === "function" ? await this.#token() : this.#token;
        }
        catch (error) {
            if (this.#isClosed())
                return;
            this.#emit(new RoomErrorEvent(`the token function failed: ${String(error)}`, undefined, error));
            this.#retry();
            return;
        }
        if (this.#isClosed())
            return;
        this.#currentToken = token || undefined;
        const v1 = !this.#tryPlain;
        const url = new URL(this.url);
        if (v1 && this.#resumeKey) {
            url.searchParams.set("resume", this.#resumeKey);
            url.searchParams.set("seen", String(this.#received));
        }
        const protocols = [];
        if (v1) {
            protocols.push(V1);
            if (this.#currentToken)
                protocols.push(TOKEN_PREFIX + this.#currentToken);
        }
        let ws;
        try {
            ws = new this.#WebSocket(url.toString(), protocols);
        }
        catch (error) {
            // A token that is not a valid subprotocol name, for instance: no retry would help.
            this.#emit(new RoomErrorEvent(`cannot open a WebSocket: ${String(error)}`, undefined, error));
            this.#finish(1006, String(error), false);
            return;
        }
        ws.binaryType = "arraybuffer";
        this.#ws = ws;
        this.#wsOpened = false;
        this.#sessionOpen = false;
        this.#connectTimer = setTimeout(() => {
            if (this.#ws !== ws)
                return;
            this.#drop(ws);
            this.#lostConnection(1006, "connection timed out", false);
        }, this.#connectTimeoutMs);
        let failTimer;
        ws.onopen = () => {
            if (this.#ws !== ws)
                return;
            this.#wsOpened = true;
            if (ws.protocol === V1) {
                this.#protocol = "jamsocket.v1";
                // The session opens with the welcome.
            }
            else {
                this.#protocol = "plain";
                this.#openPlain();
            }
        };
        ws.onmessage = (event) => {
            if (this.#ws !== ws)
                return;
            this.#receive(event.data);
        };
        ws.onerror = () => {
            if (this.#ws !== ws)
                return;
            // Browsers follow an error with a close event; some clients (Node 20's) may not: wait a
            // moment for it, then treat the connection as closed abnormally.
            clearTimeout(failTimer);
            failTimer = setTimeout(() => {
                if (this.#ws !== ws)
                    return;
                this.#drop(ws);
                this.#lostConnection(1006, "", false);
            }, 50);
        };
        ws.onclose = (event) => {
            clearTimeout(failTimer);
            if (this.#ws !== ws)
                return;
            this.#drop(ws);
            this.#lostConnection(event.code, event.reason, event.wasClean);
        };
    }
    /** Forgets the current connection (and closes it if it is still open). */
    #drop(ws) {
        if (this.#ws === ws)
            this.#detach();
        try {
            if (ws.readyState === 0 || ws.readyState === 1)
                ws.close();
        }
        catch {
            /* nothing to close */
        }
    }
    #detach() {
        const ws = this.#ws;
        if (ws) {
            ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        }
        this.#ws = null;
        this.#sessionOpen = false;
        clearTimeout(this.#timer);
        clearTimeout(this.#connectTimer);
        this.#timer = this.#connectTimer = undefined;
    }
    #lostConnection(code, reason, wasClean) {
        if (this.#isClosed())
            return;
        const opened = this.#wsOpened;
        this.#wsOpened = false;
        if (!opened) {
            // The handshake failed; a browser cannot tell why. Ask the server.
            void this.#probe();
            return;
        }
        if (TERMINAL_CODES.has(code) || (code >= 4000 && code <= 4999) || !this.#reconnect) {
            this.#finish(code, reason, wasClean);
            return;
        }
        this.#retry(code, reason);
    }
    /** After a failed handshake: `GET /ws/<room>` without the upgrade says why (PROTOCOL.md). */
    async #probe() {
        const v1 = !this.#tryPlain;
        if (!this.#fetch) {
            this.#retry();
            return;
        }
        const url = new URL(this.url);
        url.protocol = url.protocol === "wss:" ? "https:" : "http:";
        if (v1 && this.#resumeKey) {
            url.searchParams.set("resume", this.#resumeKey);
            url.searchParams.set("seen", String(this.#received));
        }
        const headers = {};
        if (this.#currentToken)
            headers.Authorization = `Bearer ${this.#currentToken}`;
        let status;
        let text;
        try {
            const response = await this.#fetch(url.toString(), { headers, cache: "no-store" });
            status = response.status;
            text = (await response.text()).trim();
        }
        catch {
            // Unreachable (a restart, no network): try again later.
            if (!this.#isClosed())
                this.#retry();
            return;
        }
        if (this.#isClosed())
            return;
        if (TERMINAL_STATUSES.has(status)) {
            const reason = text || `HTTP ${status}`;
            this.#emit(new RoomErrorEvent(reason, status));
            this.#finish(1006, reason, false);
            return;
        }
        if (!RETRY_STATUSES.has(status)) {
            if (v1) {
                // Not an answer a jamsocket.v1 server gives after a failed handshake (an older server
                // says 400 to a request without the upgrade): try plain frames at once.
                this.#tryPlain = true;
                this.#timer = setTimeout(() => void this.#connect(), 0);
                return;
            }
            // Plain frames were refused too (a room name the server rejects, say): give up.
            this.#tryPlain = false;
            const reason = text || `HTTP ${status}`;
            this.#emit(new RoomErrorEvent(reason, status));
            this.#finish(1006, reason, false);
            return;
        }
        this.#retry();
    }
    #retry(code = 1006, reason = "") {
        if (this.#isClosed())
            return;
        if (!this.#reconnect) {
            this.#finish(code, reason, false);
            return;
        }
        this.#setState(this.#everOpened ? "reconnecting" : "connecting", code, reason);
        const { initialDelayMs, maxDelayMs, factor } = this.#reconnect;
        const cap = Math.min(maxDelayMs, initialDelayMs * Math.pow(factor, this.#attempt));
        this.#attempt += 1;
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => void this.#connect(), Math.random() * cap);
    }
    #finish(code, reason, wasClean) {
        if (this.#isClosed())
            return;
        this.#detach();
        this.#pending = [];
        this.#unacked = [];
        this.#setState("closed", code, reason);
        this.#emit(new RoomCloseEvent(code, reason, wasClean));
    }
    // ---- sessions ----
    #openPlain() {
        clearTimeout(this.#connectTimer);
        this.#attempt = 0;
        this.#sessionOpen = true;
        this.#everOpened = true;
        this.#clientId = null;
        const pending = this.#pending;
        this.#pending = [];
        for (const message of pending)
            this.#ws?.send(message);
        this.#setState("open");
        this.#emit(new RoomOpenEvent(null, false));
    }
    #welcome(text) {
        let welcome;
        try {
            welcome = JSON.parse(text);
        }
        catch {
            this.#protocolError(`bad welcome: ${text}`);
            return;
        }
        const client = typeof welcome.client === "number" ? welcome.client : null;
        const resumed = welcome.resumed === true;
        const received = typeof welcome.received === "number" ? welcome.received : 0;
        if (typeof welcome.ack_every === "number" && welcome.ack_every > 0)
            this.#ackEvery = welcome.ack_every;
        let lost = 0;
        if (resumed && this.#hadSession) {
            if (received > this.#sent) {
                this.#protocolError(`welcome says ${received} messages were handled, but ${this.#sent} were sent (${this.#acked} acknowledged)`);
                return;
            }
            if (received < this.#acked) {
                // The room went back to an older snapshot (its server crashed): the messages it had
                // acknowledged since are lost; those not acknowledged are sent again, numbered on.
                lost = this.#acked - received;
                this.#acked = received;
                this.#sent = received + this.#unacked.length;
            }
            else {
                this.#unacked.splice(0, received - this.#acked);
                this.#acked = received;
            }
        }
        else {
            // A new session: both counts start from 0.
            lost = this.#unacked.length;
            this.#unacked = [];
            this.#sent = this.#acked = 0;
            this.#received = this.#ackSent = 0;
        }
        clearTimeout(this.#connectTimer);
        this.#hadSession = this.#everOpened = true;
        this.#attempt = 0;
        this.#sessionOpen = true;
        this.#clientId = client;
        const ws = this.#ws;
        // Resend what the server did not handle, in order, then what was never sent.
        for (const frame of this.#unacked)
            ws.send(frame);
        const pending = this.#pending;
        this.#pending = [];
        for (const message of pending)
            this.#transmit(message);
        this.#setState("open");
        this.#emit(new RoomOpenEvent(client, resumed));
        if (lost > 0)
            this.#emit(new RoomLostEvent(lost));
    }
    #transmit(message) {
        const ws = this.#ws;
        if (this.#protocol === "jamsocket.v1") {
            const frame = typeof message === "string" ? `m${message}` : message;
            this.#sent += 1;
            this.#unacked.push(frame);
            ws.send(frame);
        }
        else {
            ws.send(message);
        }
    }
    #receive(data) {
        if (this.#protocol !== "jamsocket.v1") {
            if (typeof data === "string")
                this.#deliver(data);
            else if (data instanceof ArrayBuffer)
                this.#deliver(new Uint8Array(data));
            return;
        }
        if (typeof data !== "string") {
            if (!(data instanceof ArrayBuffer))
                return;
            if (!this.#sessionOpen)
                return this.#protocolError("a message before the welcome");
            this.#counted();
            this.#deliver(new Uint8Array(data));
            return;
        }
        const kind = data.charAt(0);
        const rest = data.slice(1);
        if (kind === "w") {
            if (this.#sessionOpen)
                return this.#protocolError("a second welcome");
            this.#welcome(rest);
        }
        else if (!this.#sessionOpen) {
            this.#protocolError(`a frame before the welcome: ${data.slice(0, 40)}`);
        }
        else if (kind === "m") {
            this.#counted();
            this.#deliver(rest);
        }
        else if (kind === "a") {
            const n = /^\d+$/.test(rest) ? Number(rest) : NaN;
            if (!(n >= this.#acked && n <= this.#sent)) {
                return this.#protocolError(`acknowledgement ${rest} out of range (${this.#acked}..=${this.#sent})`);
            }
            this.#unacked.splice(0, n - this.#acked);
            this.#acked = n;
        }
        else {
            this.#protocolError(`unknown frame: ${data.slice(0, 40)}`);
        }
    }
    /** One more application message received: acknowledge every `ack_every`. */
    #counted() {
        this.#received += 1;
        if (this.#received - this.#ackSent >= this.#ackEvery) {
            this.#ackSent = this.#received;
            this.#ws?.send(`a${this.#received}`);
        }
    }
    #deliver(data) {
        let value;
        try {
            value = this.#codec.decode(data);
        }
        catch (error) {
            this.#emit(new RoomErrorEvent(`cannot decode a message: ${String(error)}`, undefined, error, data));
            return;
        }
        this.#emit(new RoomMessageEvent(value));
    }
    #protocolError(reason) {
        const ws = this.#ws;
        this.#detach();
        try {
            ws?.close(1002, reason.slice(0, 120));
        }
        catch {
            ws?.close();
        }
        this.#emit(new RoomErrorEvent(`protocol error: ${reason}`));
        this.#finish(1002, reason, false);
    }
    // ---- events ----
    #isClosed() {
        return this.#state === "closed";
    }
    #setState(state, code, reason) {
        const previous = this.#state;
        if (previous === state)
            return;
        this.#state = state;
        this.#emit(new RoomStateChangeEvent(state, previous, code, reason));
    }
    #emit(event) {
        this.dispatchEvent(event);
        const handler = this[`on${event.type}`];
        if (typeof handler === "function") {
            try {
                handler.call(this, event);
            }
            catch (error) {
                // Like an event listener's exception: reported, and the socket carries on.
                setTimeout(() => {
                    throw error;
                });
            }
        }
    }
}
export default RoomSocket;
