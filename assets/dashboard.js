// The operations dashboard at /dashboard. Everything it shows comes from /graphql, as the
// signed-in caller: the server scopes every answer by the token's role and organisation
// (the operator sees everything; a reseller its own customers and orders), so the page
// hides panels for convenience only, never for safety.
//
// Live: one graphql-transport-ws subscription (`liveEvents`) over /graphql. The page first
// reads `liveCursor`, then loads its tables, then subscribes after that cursor, so nothing
// committed in between is missed. Each event's cursor is remembered; when the connection
// drops, graphql-ws reconnects by itself and re-sends the same subscription, whose `after`
// is by then the last cursor seen: the server replays what was missed, nothing twice.
(function () {
  'use strict';

  var TOKEN_KEY = 'switchyard.dashboard.token';
  var state = {
    token: null,
    me: null,
    cursor: null,
    client: null,
    unsubscribe: null,
    handled: 0, // the cursor of the last event handled (cursors only increase)
    orders: new Map(), // order id -> order, the ten most recent
    statuses: new Map(), // order id -> the last status an event reported
    trails: new Map(), // subscription id -> statuses seen, in order (the last 500 lines)
    ordersTimer: null,
    queueTimer: null,
    connections: 0,
    hold: null, // a promise reconnections wait for (the browser tests hold them)
    release: null,
    session: 0, // bumped at every sign-in and sign-out: answers to an earlier one are dropped
    backoff: 0, // the wait before subscribing again after a failed stream (ms)
    resumeTimer: null,
    refreshTimer: null
  };

  // ---- small helpers ------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === 'text') node.textContent = attrs[name];
      else if (name === 'className') node.className = attrs[name];
      else if (name.slice(0, 2) === 'on') node.addEventListener(name.slice(2), attrs[name]);
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      if (child != null) node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text != null) node.textContent = text;
    return node;
  }
  function pill(status) { return el('span', { className: 'pill s-' + status, text: status }); }
  function money(m) { return m ? m.amount + ' ' + m.currency : '—'; }
  function when(iso) {
    if (!iso) return '—';
    var d = new Date(iso);
    return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  }
  // A reason as text: control characters out, runs of space folded, at most 300 characters.
  function clean(text) {
    var plain = String(text || '').replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim();
    return plain.length > 300 ? plain.slice(0, 299) + '…' : plain;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function isOperator() { return state.me && state.me.role === 'OPERATOR'; }

  // ---- GraphQL over HTTP --------------------------------------------------------------
  // An answer to a request made before the last sign-in or sign-out: ignored.
  var STALE = { stale: true, message: 'stale' };

  function GraphQLError(errors) {
    this.errors = errors;
    this.code = errors[0] && errors[0].extensions && errors[0].extensions.code;
    this.message = errors.map(function (e) { return e.message; }).join('; ');
  }
  function gql(query, variables) {
    var session = state.session;
    var headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (state.token) headers.authorization = 'Bearer ' + state.token;
    return fetch('/graphql', { method: 'POST', headers: headers, body: JSON.stringify({ query: query, variables: variables || {} }) })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (session !== state.session) throw STALE;
        if (body.errors && body.errors.length) throw new GraphQLError(body.errors);
        return body.data;
      });
  }

  // ---- signing in ---------------------------------------------------------------------
  function showError(message) { $('sign-in-error').textContent = message || ''; }

  function signIn(token) {
    state.session += 1;
    state.token = token;
    return gql('{ me { role organizationId } }').then(function (data) {
      state.me = data.me;
      sessionStorage.setItem(TOKEN_KEY, token);
      $('sign-in').hidden = true;
      $('panels').hidden = false;
      $('session').hidden = false;
      $('who').textContent = data.me.role.toLowerCase() + (data.me.organizationId ? ' #' + data.me.organizationId : '');
      document.querySelectorAll('[data-operator]').forEach(function (node) { node.hidden = !isOperator(); });
      return start();
    }).catch(function (error) {
      if (error === STALE) return; // a later sign-in or sign-out took over
      signOut();
      showError(error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN'
        ? 'That token or key was refused.' : 'Cannot sign in: ' + error.message);
    });
  }

  function signOut() {
    state.session += 1;
    state.backoff = 0;
    stopFeed();
    clearTimeout(state.resumeTimer);
    clearInterval(state.refreshTimer);
    state.me = state.token = state.cursor = null;
    state.handled = 0; state.orders.clear(); state.statuses.clear(); state.trails.clear();
    sessionStorage.removeItem(TOKEN_KEY);
    $('panels').hidden = true;
    $('session').hidden = true;
    $('sign-in').hidden = false;
    clearTimeout(state.queueTimer);
    clearTimeout(state.ordersTimer);
    state.queueTimer = state.ordersTimer = null;
    ['feed', 'invoices'].forEach(function (id) { clear($(id)); });
    ['orders', 'queue-counts', 'dead-jobs', 'runs', 'imports'].forEach(function (id) { clear($(id).tBodies[0]); });
    ['throughput', 'leakage'].forEach(function (id) { clear($(id)); });
    document.querySelectorAll('.panel-error').forEach(function (node) { node.remove(); });
    $('feed-position').textContent = 'Waiting for events…';
    $('queue-summary').textContent = '';
    setConnection('offline');
  }

  // Ends the live subscription (its end is then not news to the handlers).
  function stopFeed() {
    var unsubscribe = state.unsubscribe, client = state.client;
    state.client = state.unsubscribe = null;
    if (unsubscribe) unsubscribe();
    if (client) client.dispose();
  }

  $('login-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var button = event.target.querySelector('button');
    button.disabled = true;
    showError('');
    state.token = null;
    gql('mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }',
      { email: $('email').value.trim(), password: $('password').value })
      .then(function (data) { $('password').value = ''; return signIn(data.login.token); })
      .catch(function (error) {
        showError(error.code === 'UNAUTHENTICATED' ? 'Wrong email or password.' : error.message);
      })
      .then(function () { button.disabled = false; });
  });
  $('key-form').addEventListener('submit', function (event) {
    event.preventDefault();
    showError('');
    var key = $('api-key').value.trim();
    $('api-key').value = '';
    if (key) signIn(key);
  });
  $('sign-out').addEventListener('click', signOut);

  // ---- loading state, then going live --------------------------------------------------
  function start() {
    var session = state.session;
    return gql('{ liveCursor }').then(function (data) {
      state.cursor = data.liveCursor;
      return loadAll();
    }).then(function () {
      if (session !== state.session) throw STALE; // signed out (or in again) meanwhile
      subscribe();
      clearInterval(state.refreshTimer);
      // The oldest wait and the per-minute chart move with time, not only with events.
      state.refreshTimer = setInterval(function () { if (isOperator()) loadQueue().catch(panelError('queue-panel')); }, 15000);
    });
  }

  // Each panel loads on its own: one the caller may not read (a vendor has no orders) says
  // so in the panel and the others still show.
  function loadAll() {
    var loads = [[loadOrders, 'orders-panel'], [loadInvoices, 'billing-panel']];
    if (isOperator()) loads.push([loadQueue, 'queue-panel'], [loadRuns, 'billing-panel'], [loadImports, 'recon-panel']);
    return Promise.all(loads.map(function (load) {
      return load[0]().then(function () { clearPanelError(load[1]); }, panelError(load[1]));
    }));
  }

  function clearPanelError(panel) {
    var note = $(panel).querySelector('.panel-error');
    if (note) note.remove();
  }

  function panelError(panel) {
    return function (error) {
      if (error === STALE) return;
      var section = $(panel);
      var note = section.querySelector('.panel-error') || section.appendChild(el('p', { className: 'error panel-error', role: 'alert' }));
      note.textContent = 'Cannot show this: ' + (error && error.message || error);
    };
  }

  function setConnection(status) {
    var node = $('connection');
    node.className = 'pill s-' + status.replace(' ', '-');
    node.textContent = status;
  }

  var EVENT_FIELDS = 'eventId cursor kind status orderId subscriptionId jobId customerId quantity detail occurredAt';

  function subscribe() {
    stopFeed(); // never two clients
    var client = graphqlWs.createClient({
      url: (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql',
      connectionParams: function () { return { authorization: 'Bearer ' + state.token }; },
      retryAttempts: Infinity,
      // 4401/4403: the token expired or the key was revoked; retrying cannot help.
      shouldRetry: function (closed) { return !(closed && (closed.code === 4401 || closed.code === 4403)); },
      retryWait: function (retries) {
        var delay = Math.min(500 * Math.pow(2, retries), 10000) * (0.5 + Math.random() / 2);
        return new Promise(function (resolve) { setTimeout(resolve, delay); }).then(function () { return state.hold; });
      },
      keepAlive: 10000,
      on: {
        connecting: function () { setConnection(state.cursor ? 'reconnecting' : 'connecting'); },
        connected: function () { state.connections += 1; setConnection('live'); },
        closed: function () { if (state.client === client) setConnection('reconnecting'); }
      }
    });
    state.client = client;
    // graphql-ws re-sends this very payload on every reconnection: keeping `after` at the
    // last cursor seen makes each reconnection resume exactly there.
    var payload = {
      query: 'subscription($after: String) { liveEvents(after: $after) { ' + EVENT_FIELDS + ' } }',
      variables: { after: state.cursor }
    };
    state.unsubscribe = client.subscribe(payload, {
      next: function (message) {
        if (state.client !== client) return;
        if (message.errors && message.errors.length) return lost(new GraphQLError(message.errors));
        var event = message.data && message.data.liveEvents;
        if (!event) return;
        state.cursor = payload.variables.after = event.cursor;
        $('feed-position').textContent = 'Last event ' + when(event.occurredAt);
        var cursor = Number(event.cursor);
        if (cursor <= state.handled) return; // already handled (a replay overlapping)
        state.handled = cursor;
        state.backoff = 0; // the feed works: the next trouble starts from a short wait
        onEvent(event);
      },
      error: function (error) {
        if (state.client !== client) return;
        var errors = Array.isArray(error) ? error : null;
        if (errors) return lost(new GraphQLError(errors));
        stopFeed();
        resume(1000);
      },
      // The server ends a stream when the session ends (a token's expiry, a revoked key) and
      // when it shuts down (then it closes with 1001: another process, or this one again,
      // takes over). Which one, `resume` finds out.
      complete: function () {
        if (state.client !== client) return;
        stopFeed();
        resume(500);
      }
    });
  }

  // Subscribes again after `delay` ms, after the last event seen, if the session still holds;
  // signs out if it does not; tries again, waiting longer each time, while the server cannot
  // be reached.
  function resume(delay) {
    setConnection('reconnecting');
    clearTimeout(state.resumeTimer);
    var session = state.session;
    state.resumeTimer = setTimeout(function () {
      gql('{ me { role } }').then(function () {
        if (session === state.session && !state.client) subscribe();
      }, function (error) {
        if (error === STALE || session !== state.session) return;
        if (error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN') return sessionEnded();
        resume(Math.min(delay * 2, 5000));
      });
    }, delay);
  }

  function sessionEnded() {
    signOut();
    showError('Your session ended (the token expired or the key was revoked): sign in again.');
  }

  // The stream ended with an error. EVENTS_LOST: the server no longer keeps what the page
  // missed, so start again from the current state. RATE_LIMITED: subscribe again when told.
  // Anything else (a database blip): subscribe again a little later.
  function lost(error) {
    stopFeed();
    if (error.code === 'EVENTS_LOST') {
      state.trails.clear();
      state.statuses.clear();
      start().catch(function () { resume(3000); });
      return;
    }
    // Refused for good (a key without the scope, a bad request): asking again cannot help.
    if (error.code === 'FORBIDDEN' || error.code === 'BAD_USER_INPUT') {
      setConnection('offline');
      $('feed-position').textContent = 'The live feed is not available: ' + error.message;
      return;
    }
    var retryAfter = error.errors && error.errors[0].extensions && error.errors[0].extensions.retryAfter;
    state.backoff = Math.min((state.backoff || 1500) * 2, 60000); // grows until an event arrives
    resume(error.code === 'RATE_LIMITED' && retryAfter ? Math.max(retryAfter * 1000, state.backoff) : state.backoff);
  }

  // ---- events ---------------------------------------------------------------------------
  function onEvent(event) {
    addToFeed(event);
    if (event.subscriptionId && event.kind === 'PROVISIONING_STATUS_CHANGED') {
      var trail = state.trails.get(event.subscriptionId) || [];
      if (trail[trail.length - 1] !== event.status) trail.push(event.status);
      state.trails.delete(event.subscriptionId);
      state.trails.set(event.subscriptionId, trail); // the most recent last
      if (state.trails.size > 500) state.trails.delete(state.trails.keys().next().value);
    }
    // Kept even for an order still loading: the status shown is the last one an event told.
    if (event.kind === 'ORDER_STATUS_CHANGED' && event.orderId) {
      state.statuses.delete(event.orderId);
      state.statuses.set(event.orderId, event.status);
      if (state.statuses.size > 500) state.statuses.delete(state.statuses.keys().next().value);
    }
    if (event.kind === 'ORDER_PLACED') {
      // One read of the recent orders for a burst of new ones, however many.
      if (!state.ordersTimer) {
        state.ordersTimer = setTimeout(function () {
          state.ordersTimer = null;
          loadOrders().catch(panelError('orders-panel'));
        }, 250);
      }
    } else if (event.orderId || event.subscriptionId) {
      renderOrders();
    }
    if (isOperator()) {
      if (event.kind === 'PROVISIONING_STATUS_CHANGED') queueSoon();
      if (event.kind === 'RECONCILIATION_CHANGED') loadImports().catch(panelError('recon-panel'));
    }
  }

  function queueSoon() {
    if (state.queueTimer) return; // one read for a burst of events
    state.queueTimer = setTimeout(function () {
      state.queueTimer = null;
      loadQueue().catch(panelError('queue-panel'));
    }, 300);
  }

  function addToFeed(event) {
    var feed = $('feed');
    var about = [
      event.orderId && 'order ' + event.orderId,
      event.subscriptionId && 'subscription ' + event.subscriptionId,
      event.jobId && 'job ' + event.jobId
    ].filter(Boolean).join(', ');
    var item = el('li', { className: 'new', 'data-kind': event.kind }, [
      el('time', { datetime: event.occurredAt, text: when(event.occurredAt).slice(11, 16) }),
      event.kind.toLowerCase().replace(/_/g, ' ') + ' ', pill(event.status),
      about ? ' ' + about : null,
      event.detail ? el('span', { className: 'trail', text: clean(event.detail) }) : null
    ]);
    feed.insertBefore(item, feed.firstChild);
    while (feed.children.length > 100) feed.removeChild(feed.lastChild);
  }

  // ---- orders -----------------------------------------------------------------------------
  var ORDER_FIELDS = 'id status createdAt customer { name } totalRetail { amount currency } ' +
    'lines { lineNumber quantity status offer { name } subscription { id status } }';

  function loadOrders() {
    return gql('{ recentOrders(first: 10) { ' + ORDER_FIELDS + ' } }').then(function (data) {
      state.orders.clear();
      data.recentOrders.forEach(function (order) { state.orders.set(order.id, order); });
      renderOrders();
    });
  }

  // A line's statuses: every status its provisioning events reported while the page watched,
  // in order (none made up); the status as read when it saw none.
  function trailOf(order, line) {
    var id = line.subscription && line.subscription.id;
    var trail = ((id && state.trails.get(id)) || []).slice();
    if (!trail.length) trail.push(line.subscription ? line.subscription.status : line.status);
    return trail;
  }

  function renderOrders() {
    var body = $('orders').tBodies[0];
    clear(body);
    var orders = Array.from(state.orders.values()).sort(function (a, b) { return Number(b.id) - Number(a.id); }).slice(0, 10);
    orders.forEach(function (order) {
      var lines = el('ul', {}, order.lines.map(function (line) {
        var trail = trailOf(order, line);
        return el('li', { 'data-subscription': line.subscription ? line.subscription.id : '' }, [
          line.quantity + ' × ' + (line.offer ? line.offer.name : 'offer') + ' ',
          pill(trail[trail.length - 1]),
          trail.length > 1 ? el('span', { className: 'trail', text: trail.join(' → ') }) : null
        ]);
      }));
      body.appendChild(el('tr', { 'data-order': order.id }, [
        el('td', {}, ['#' + order.id, el('span', { className: 'trail', text: when(order.createdAt) })]),
        el('td', { text: order.customer ? order.customer.name : '—' }),
        el('td', {}, [pill(state.statuses.get(order.id) || order.status)]),
        el('td', {}, [lines]),
        el('td', { className: 'num', text: money(order.totalRetail) })
      ]));
    });
    $('orders-empty').hidden = orders.length > 0;
  }

  // ---- queue health -------------------------------------------------------------------------
  function loadQueue() {
    return gql('{ queueHealth { counts { kind status count } oldestWaitingSeconds } ' +
      'jobThroughput(minutes: 60) { minute succeeded failed dead } ' +
      'provisioningJobs(status: DEAD, first: 20) { totalCount nodes { id action subscriptionId attempts lastError } } }')
      .then(function (data) {
        var health = data.queueHealth;
        var waiting = health.oldestWaitingSeconds;
        var dead = data.provisioningJobs.totalCount;
        $('queue-summary').textContent = (waiting == null ? 'No job is waiting for a worker.' :
          'The oldest waiting job has waited ' + duration(waiting) + '.') +
          ' ' + dead + ' dead provisioning job' + (dead === 1 ? '' : 's') + '.';
        var counts = $('queue-counts').tBodies[0];
        clear(counts);
        health.counts.forEach(function (c) {
          counts.appendChild(el('tr', {}, [el('td', { text: c.kind }), el('td', {}, [pill(c.status)]), el('td', { className: 'num', text: String(c.count) })]));
        });
        if (!health.counts.length) counts.appendChild(el('tr', {}, [el('td', { colspan: '3', className: 'empty', text: 'The queue is empty.' })]));
        renderDead(data.provisioningJobs.nodes);
        renderThroughput(data.jobThroughput);
      });
  }

  function duration(seconds) {
    if (seconds < 90) return seconds + ' s';
    if (seconds < 5400) return Math.round(seconds / 60) + ' min';
    return Math.round(seconds / 360) / 10 + ' h';
  }

  function renderDead(jobs) {
    var body = $('dead-jobs').tBodies[0];
    clear(body);
    jobs.forEach(function (job) {
      var button = el('button', { type: 'button', className: 'secondary', 'data-retry': job.id, text: 'Retry',
        'aria-label': 'Retry job ' + job.id });
      button.addEventListener('click', function () { retry(job.id, button); });
      body.appendChild(el('tr', { 'data-job': job.id }, [
        el('td', { text: '#' + job.id }),
        el('td', { text: job.action }),
        el('td', { text: '#' + job.subscriptionId }),
        el('td', { className: 'reason', text: clean(job.lastError) + ' (' + job.attempts + ' attempts)' }),
        el('td', {}, [button])
      ]));
    });
    $('dead-empty').hidden = jobs.length > 0;
  }

  function retry(id, button) {
    button.disabled = true;
    button.textContent = 'Retrying…';
    gql('mutation($id: ID!) { retryProvisioning(jobId: $id) { id status } }', { id: id })
      .then(loadQueue)
      .catch(function (error) {
        if (error === STALE) return;
        button.disabled = false;
        button.textContent = 'Retry';
        button.parentNode.appendChild(el('span', { className: 'error', role: 'alert', text: error.message }));
      });
  }

  function renderThroughput(minutes) {
    var chart = $('throughput');
    clear(chart);
    var width = 600, height = 160, top = 10, bottom = 20;
    var max = Math.max(1, Math.max.apply(null, minutes.map(function (m) { return m.succeeded + m.failed + m.dead; })));
    var step = width / Math.max(1, minutes.length);
    var total = { succeeded: 0, failed: 0, dead: 0 };
    minutes.forEach(function (m, i) {
      var y = height - bottom;
      [['succeeded', 'bar-ok'], ['failed', 'bar-failed'], ['dead', 'bar-dead']].forEach(function (part) {
        var count = m[part[0]];
        total[part[0]] += count;
        if (!count) return;
        var h = count / max * (height - top - bottom);
        y -= h;
        var rect = svg('rect', { x: (i * step + 1).toFixed(1), y: y.toFixed(1), width: Math.max(1, step - 2).toFixed(1), height: h.toFixed(1), class: part[1] });
        rect.appendChild(svg('title', {}, when(m.minute).slice(11, 16) + ': ' + count + ' ' + part[0]));
        chart.appendChild(rect);
      });
    });
    chart.appendChild(svg('text', { x: 4, y: height - 5, class: 'axis' }, minutes.length ? when(minutes[0].minute).slice(11, 16) : ''));
    chart.appendChild(svg('text', { x: width - 4, y: height - 5, class: 'axis', 'text-anchor': 'end' }, 'now'));
    chart.appendChild(svg('text', { x: 4, y: 12, class: 'axis' }, 'max ' + max + '/min'));
    chart.setAttribute('aria-label', 'Jobs finished in the last hour: ' + total.succeeded + ' succeeded, ' +
      total.failed + ' failed, ' + total.dead + ' dead; at most ' + max + ' in one minute.');
  }

  // ---- billing ------------------------------------------------------------------------------
  function loadRuns() {
    return gql('{ billingRuns(first: 5) { id period status startedAt finishedAt lastError } }').then(function (data) {
      var body = $('runs').tBodies[0];
      clear(body);
      data.billingRuns.forEach(function (run) {
        body.appendChild(el('tr', {}, [el('td', { text: run.period }), el('td', {}, [pill(run.status)]),
          el('td', { text: when(run.startedAt) }), el('td', { text: when(run.finishedAt) })]));
      });
      $('runs-empty').hidden = data.billingRuns.length > 0;
    });
  }

  function loadInvoices() {
    var fields = '{ totalCount nodes { id number kind status period total { amount currency } } }';
    return gql('{ drafts: invoices(first: 50, newestFirst: true, filter: {status: DRAFT}) ' + fields +
      ' issued: invoices(first: 50, newestFirst: true, filter: {status: ISSUED}) ' + fields + ' }').then(function (data) {
      var byPeriod = new Map();
      data.drafts.nodes.concat(data.issued.nodes).forEach(function (invoice) {
        if (!byPeriod.has(invoice.period)) byPeriod.set(invoice.period, []);
        byPeriod.get(invoice.period).push(invoice);
      });
      var root = $('invoices');
      clear(root);
      Array.from(byPeriod.keys()).sort().reverse().forEach(function (period) {
        var invoices = byPeriod.get(period);
        var drafts = invoices.filter(function (i) { return i.status === 'DRAFT'; }).length;
        root.appendChild(el('h4', { text: period + ' · ' + drafts + ' draft, ' + (invoices.length - drafts) + ' issued' }));
        root.appendChild(el('ul', { className: 'invoices' }, invoices.map(function (invoice) {
          var link = el('a', { href: '/invoices/' + invoice.id, 'data-invoice': invoice.id,
            text: invoice.number || 'Draft #' + invoice.id });
          link.addEventListener('click', function (event) { event.preventDefault(); openInvoice(invoice.id); });
          return el('li', {}, [link, ' ', pill(invoice.status), ' ' + money(invoice.total)]);
        })));
      });
      var more = data.drafts.totalCount - data.drafts.nodes.length + data.issued.totalCount - data.issued.nodes.length;
      if (more > 0) root.appendChild(el('p', { className: 'muted small', text: 'And ' + more + ' older invoices.' }));
      $('invoices-empty').hidden = byPeriod.size > 0;
    });
  }

  // The printable invoice needs the bearer token, which a plain link cannot send: it is
  // fetched with the token and opened from memory, so the token never lands in a URL.
  function openInvoice(id) {
    var opened = window.open('', '_blank');
    if (opened) opened.opener = null; // the invoice's page gets no handle on this one
    fetch('/invoices/' + id, { headers: { authorization: 'Bearer ' + state.token } })
      .then(function (response) {
        if (!response.ok) throw new Error('the invoice could not be read (' + response.status + ')');
        return response.text();
      })
      .then(function (html) {
        var url = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
        if (opened) opened.location = url; else location.assign(url);
        setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
      })
      .catch(function (error) { if (opened) opened.close(); alert(error.message); });
  }

  // ---- reconciliation -------------------------------------------------------------------------
  function loadImports() {
    return gql('{ statementImports(first: 20, newestFirst: true) { nodes { id period sourceName status report { ' +
      'leakage { amount currency } recovered { amount currency } ' +
      'vendors { name flagged leakage { amount currency } } } } } }').then(function (data) {
      var imports = data.statementImports.nodes; // newest first
      var body = $('imports').tBodies[0];
      clear(body);
      imports.forEach(function (item) {
        var flagged = item.report.vendors.reduce(function (sum, v) { return sum + v.flagged; }, 0);
        body.appendChild(el('tr', {}, [
          el('td', { text: '#' + item.id + ' ' + item.sourceName }), el('td', { text: item.period }),
          el('td', {}, [pill(item.status)]), el('td', { className: 'num', text: String(flagged) }),
          el('td', { className: 'num', text: item.report.leakage.map(money).join(', ') || '0' }),
          el('td', { className: 'num', text: item.report.recovered.map(money).join(', ') || '0' })
        ]));
      });
      $('imports-empty').hidden = imports.length > 0;
      renderLeakage(imports[0]);
    });
  }

  function renderLeakage(latest) {
    var chart = $('leakage');
    clear(chart);
    var bars = latest ? latest.report.vendors.filter(function (v) { return v.leakage; }) : [];
    if (!bars.length) {
      chart.setAttribute('viewBox', '0 0 600 30');
      chart.appendChild(svg('text', { x: 8, y: 20, class: 'axis' }, latest ? 'No leakage in the latest import.' : 'No import yet.'));
      chart.setAttribute('aria-label', latest ? 'No leakage in the latest import' : 'No import yet');
      return;
    }
    var max = Math.max.apply(null, bars.map(function (v) { return Math.abs(Number(v.leakage.amount)); })) || 1;
    chart.setAttribute('viewBox', '0 0 600 ' + (bars.length * 28 + 8));
    bars.forEach(function (v, i) {
      var y = 6 + i * 28;
      var w = Math.abs(Number(v.leakage.amount)) / max * 330;
      chart.appendChild(svg('text', { x: 4, y: y + 15, class: 'axis' }, v.name));
      chart.appendChild(svg('rect', { x: 150, y: y, width: Math.max(1, w).toFixed(1), height: 20, class: 'bar-leak' }));
      chart.appendChild(svg('text', { x: 156 + w, y: y + 15, class: 'axis' }, money(v.leakage)));
    });
    chart.setAttribute('aria-label', 'Leakage per vendor: ' + bars.map(function (v) { return v.name + ' ' + money(v.leakage); }).join(', '));
  }

  // ---- start ------------------------------------------------------------------------------------
  // For the browser console (and the browser tests): how many times the feed connected, and
  // a way to drop the connection to watch it reconnect and resume.
  window.switchyardDashboard = {
    connections: function () { return state.connections; },
    cursor: function () { return state.cursor; },
    dropConnection: function () { if (state.client) state.client.terminate(); },
    // Reconnections wait until released: to watch a resume replay what was missed.
    holdReconnect: function () { state.hold = new Promise(function (resolve) { state.release = resolve; }); },
    releaseReconnect: function () { if (state.release) state.release(); state.hold = null; }
  };
  setConnection('offline');
  var saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
})();
