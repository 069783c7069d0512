// GraphiQL at `/`, every file served by Switchyard itself (no CDN). Queries and mutations go
// to /graphql over HTTP; subscriptions over the same /graphql as a graphql-transport-ws
// WebSocket. The header editor starts with an Authorization header: paste a token (from the
// `login` mutation, or an API key) after "Bearer ".
(function () {
  'use strict';

  var defaultQuery = [
    '# Sign in (demo password: switchyard-demo), then put the token in the Headers tab:',
    '#   mutation { login(email: "operator@switchyard.demo", password: "switchyard-demo") { token } }',
    '#',
    '# Live events arrive over the same /graphql endpoint as a WebSocket:',
    '#   subscription { liveEvents { kind status orderId subscriptionId occurredAt } }',
    '',
    'query Me {',
    '  me { role organizationId }',
    '}',
    ''
  ].join('\n');

  // An Authorization header with no token after the scheme is dropped, not sent: the server
  // refuses a malformed credential, and the prefilled "Bearer " is a prompt, not a credential.
  function withoutBlankAuthorization(headers) {
    var kept = {};
    Object.keys(headers || {}).forEach(function (name) {
      var value = headers[name];
      if (/^authorization$/i.test(name) && !/^\s*\S+\s+\S/.test(String(value))) return;
      kept[name] = value;
    });
    return kept;
  }

  var socketUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
  var base = GraphiQL.createFetcher({ url: location.origin + '/graphql', subscriptionUrl: socketUrl });
  function fetcher(params, options) {
    var opts = Object.assign({}, options, { headers: withoutBlankAuthorization(options && options.headers) });
    return base(params, opts);
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: JSON.stringify({ Authorization: 'Bearer ' }, null, 2),
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false,
      // The query editor, its tabs and history (a login mutation holds a password) live as
      // long as the browser tab, not on the disk.
      storage: window.sessionStorage,
      isHeadersEditorEnabled: true
    })
  );
})();
