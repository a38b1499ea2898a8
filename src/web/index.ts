export { WebServer, type WebServerOptions, WEB_PORT_DEFAULT, WEB_HOST_DEFAULT, CONTENT_SECURITY_POLICY } from './server.js';
export { checkRequest, cookieName, isLoopback, WEB_ACTION_HEADER, WEB_ACTION_HEADER_VALUE, type GuardConfig, type Verdict } from './guard.js';
export { WEB_TOKEN_FILE } from './token.js';
