/*
 * metropilot — salle de contrôle (control room page).
 *
 * One IIFE, no build step, no dependency beyond the vendored MapLibre GL JS (global `maplibregl`).
 * The page talks to the platform's HTTP API only: OAuth2 tokens at /auth/token, data under /api/v1.
 *
 * Layout of this file: reference tables (French labels) → small DOM/format helpers → session (tokens,
 * API calls) → map (style, clusters, HTML labels) → filters & counters → search → detail panel → boot.
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------------------------------------
  // Reference tables. They mirror src/metropilot/assets/types.py and core/permissions.py: the API
  // gives keys, the operator reads French.
  // ---------------------------------------------------------------------------------------------

  const TYPE_LABELS = {
    streetlight: "Point lumineux",
    lighting_cabinet: "Armoire d'éclairage",
    traffic_signal: "Carrefour à feux",
    camera: "Caméra",
    bollard: "Borne escamotable",
    sign: "Panneau à message variable",
    sensor: "Capteur",
    vehicle: "Véhicule d'intervention",
  };

  // NGSI-LD entity type (inside URNs) → registry type key, to label a related asset before it is read.
  const NGSI_TYPES = {
    Streetlight: "streetlight",
    StreetlightControlCabinet: "lighting_cabinet",
    TrafficSignalController: "traffic_signal",
    Camera: "camera",
    RetractableBollard: "bollard",
    VariableMessageSign: "sign",
    Device: "sensor",
    Vehicle: "vehicle",
  };

  // The map tells types apart by the ring around each point (status owns the fill colour), so the
  // ring colours avoid the status hues. Light points carry no ring: they are 92 % of the inventory.
  const TYPE_RINGS = {
    streetlight: null,
    lighting_cabinet: "#ffffff",
    traffic_signal: "#e879f9",
    camera: "#22d3ee",
    bollard: "#d6b38a",
    sign: "#a78bfa",
    sensor: "#f9a8d4",
    vehicle: "#c7d2fe",
  };

  const STATUS_LABELS = {
    planned: "En projet",
    active: "En service",
    degraded: "Dégradé",
    fault: "En panne",
    offline: "Hors ligne",
    maintenance: "En maintenance",
    retired: "Déposé",
  };

  // Fill colours of points and badges; chosen for contrast on the dark map and with dark badge text.
  const STATUS_COLORS = {
    planned: "#5aa9ff",
    active: "#2fbf71",
    degraded: "#f2c94c",
    fault: "#ff5c5c",
    offline: "#9aa5b1",
    maintenance: "#ff8a3d",
    retired: "#5f6873",
  };
  const STATUS_TEXT_ON = { retired: "#ffffff" }; // badge text colour when dark text lacks contrast
  const ALARM_STATUSES = new Set(["fault", "offline"]);

  const ROLE_LABELS = {
    administrator: "Administrateur",
    supervisor: "Superviseur",
    operator: "Opérateur",
    field_agent: "Agent de terrain",
    data_steward: "Référent données",
    security_analyst: "Analyste sécurité",
  };

  const ACTION_LABELS = {
    "asset.created": "Création",
    "asset.imported": "Import",
    "asset.updated": "Modification",
    "asset.retired": "Dépose",
  };

  // Typed attributes (types.py): French label, unit, and translations of enumerated values.
  const ATTRIBUTES = {
    // Point lumineux
    cabinet: { label: "Armoire d'alimentation" },
    lamp_technology: {
      label: "Technologie de lampe",
      values: { LED: "LED", HPS: "Sodium haute pression", LPS: "Sodium basse pression", MH: "Iodures métalliques",
        fluorescent: "Fluorescente", mercury: "Vapeur de mercure" },
    },
    nominal_power_w: { label: "Puissance nominale", unit: "W" },
    dimmable: { label: "Gradable" },
    control: { label: "Pilotage", values: { individual: "Individuel", group: "Par groupe" } },
    lantern_height_m: { label: "Hauteur de feu", unit: "m" },
    color_temperature_k: { label: "Température de couleur", unit: "K" },
    circuit: { label: "Circuit" },
    date_last_lamp_change: { label: "Dernier changement de lampe", kind: "date" },
    // Armoire d'éclairage
    max_power_kw: { label: "Puissance maximale", unit: "kW" },
    working_mode: {
      label: "Mode de fonctionnement",
      values: { automatic: "Automatique", manual: "Manuel", semiautomatic: "Semi-automatique" },
    },
    circuits: { label: "Nombre de circuits" },
    meter_id: { label: "N° de compteur" },
    remote_managed: { label: "Télégestion" },
    // Carrefour à feux
    controller_protocol: { label: "Protocole du contrôleur", values: { proprietary: "Propriétaire" } },
    signal_groups: { label: "Lignes de feux" },
    phases: { label: "Phases" },
    plans: {
      label: "Plans de feux",
      values: { normal: "Normal", heure_pointe: "Heure de pointe", nuit: "Nuit", clignotant: "Clignotant" },
    },
    bus_priority: { label: "Priorité bus" },
    acoustic_signals: { label: "Signaux sonores (malvoyants)" },
    pedestrian_crossings: { label: "Traversées piétonnes" },
    // Caméra
    camera_type: {
      label: "Type de caméra",
      values: { fixed: "Fixe", ptz: "Mobile (PTZ)", dome: "Dôme", panoramic: "Panoramique" },
    },
    usage: {
      label: "Usage",
      values: { video_protection: "Vidéoprotection", traffic: "Trafic", plate_recognition: "Lecture de plaques",
        crowd_counting: "Comptage de foule" },
    },
    resolution: { label: "Résolution" },
    onvif_profiles: { label: "Profils ONVIF" },
    night_vision: { label: "Vision nocturne" },
    privacy_masking: { label: "Masquage des zones privées" },
    // Borne escamotable
    mechanism: {
      label: "Mécanisme",
      values: { hydraulic: "Hydraulique", electromechanical: "Électromécanique", pneumatic: "Pneumatique" },
    },
    access_zone: { label: "Zone protégée" },
    default_position: { label: "Position par défaut", values: { up: "Levée", down: "Abaissée" } },
    emergency_access: { label: "Accès des secours" },
    // Panneau à message variable
    technology: {
      label: "Technologie",
      values: { led_matrix: "Matrice LED", led_text: "Texte LED", prismatic: "Prismatique",
        e_paper: "Papier électronique" },
    },
    lines: { label: "Lignes" },
    chars_per_line: { label: "Caractères par ligne" },
    full_matrix: { label: "Pleine matrice" },
    purpose: { label: "Usage", values: { traffic: "Circulation", information: "Information", parking: "Stationnement" } },
    heading_deg: { label: "Orientation", unit: "°" },
    // Capteur
    sensor_kind: {
      label: "Type de capteur",
      values: { road_temperature: "Température de chaussée", weather: "Météo", air_quality: "Qualité de l'air",
        noise: "Bruit", traffic_counter: "Comptage routier", presence: "Présence" },
    },
    measured_properties: {
      label: "Grandeurs mesurées",
      values: { temperature: "Température", humidity: "Humidité", precipitation: "Précipitations",
        windSpeed: "Vitesse du vent", noiseLevel: "Niveau sonore", trafficFlow: "Débit de trafic",
        occupancy: "Occupation", motion: "Mouvement" },
    },
    reporting_period_s: { label: "Période de remontée", unit: "s" },
    lanes: { label: "Voies couvertes" },
    mounting_height_m: { label: "Hauteur de pose", unit: "m" },
    // Véhicule d'intervention
    vehicle_kind: {
      label: "Type de véhicule",
      values: { van: "Fourgon", truck: "Camion", car: "Voiture", gritter: "Saleuse", aerial_lift: "Nacelle",
        motorcycle: "Moto", bicycle: "Vélo" },
    },
    fleet_number: { label: "N° de parc" },
    plate: { label: "Immatriculation" },
    service: {
      label: "Service",
      values: { lighting: "Éclairage public", signals: "Signalisation", roads: "Voirie", cleaning: "Propreté",
        green_spaces: "Espaces verts", winter: "Viabilité hivernale", police: "Police municipale",
        video: "Vidéoprotection", general: "Services généraux" },
    },
    depot: { label: "Centre de rattachement" },
    crew_capacity: { label: "Équipage (places)" },
  };

  // Fields of the asset itself, for the history's "what changed" line.
  const FIELD_LABELS = {
    name: "nom", status: "état", address: "adresse", commune: "commune", installed_on: "date de pose",
    manufacturer: "fabricant", model: "modèle", serial_number: "n° de série", geometry: "position",
  };

  // Problem types (RFC 9457 `type` = /problems/<slug>) the operator should read in French.
  const PROBLEMS_FR = {
    "invalid-credentials": "Identifiant ou mot de passe incorrect.",
    "too-many-attempts": "Trop de tentatives de connexion échouées : patientez quelques minutes avant de réessayer.",
    "not-authenticated": "Votre session a expiré : reconnectez-vous.",
    forbidden: "Vos droits ne permettent pas cette action.",
    "commune-out-of-scope": "Cette commune est hors de votre périmètre.",
    "not-found": "Élément introuvable (ou hors de votre périmètre).",
    "not-ready": "La plateforme démarre : réessayez dans un instant.",
    "internal-error": "Erreur interne du serveur : elle a été journalisée.",
    "bad-request": "Requête refusée par le serveur.",
    "validation-error": "Requête refusée par le serveur.",
  };
  // For these the French sentence says everything; other problems also show the server's detail.
  const SELF_EXPLAINED = new Set(["invalid-credentials", "too-many-attempts", "not-authenticated", "not-ready"]);

  const REFRESH_KEY = "metropilot.refreshToken";
  const METRO_BOUNDS = [[4.93, 47.215], [5.2, 47.385]]; // first frame, before the communes arrive
  const CLUSTER_MAX_ZOOM = 15;
  const EMPTY = { type: "FeatureCollection", features: [] };

  // ---------------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------------

  const $ = (selector, root) => (root || document).querySelector(selector);
  const nf = new Intl.NumberFormat("fr-FR");
  const nfDecimal = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 2 });
  const nfCoord = new Intl.NumberFormat("fr-FR", { minimumFractionDigits: 5, maximumFractionDigits: 5 });
  const dtParis = new Intl.DateTimeFormat("fr-FR", {
    dateStyle: "medium", timeStyle: "medium", timeZone: "Europe/Paris",
  });
  const dateOnly = new Intl.DateTimeFormat("fr-FR", { dateStyle: "long", timeZone: "UTC" });

  /** Build a DOM element; children are nodes or strings (text, never HTML: names come from imports). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = value;
        else if (key === "style") node.style.cssText = value;
        else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Server timestamps are UTC; a naive ISO string (no offset) is read as UTC, not local time. */
  function parseInstant(value) {
    if (!value) return null;
    const text = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : value + "Z";
    const date = new Date(text);
    return Number.isNaN(date.getTime()) ? null : date;
  }
  function formatInstant(value) {
    const date = parseInstant(value);
    return date ? dtParis.format(date) : "—";
  }
  function formatDate(value) {
    if (!value) return "—";
    const date = new Date(value + "T00:00:00Z"); // a calendar date: no time zone shift
    return Number.isNaN(date.getTime()) ? value : dateOnly.format(date);
  }

  function localId(urn) {
    const parts = String(urn).split(":");
    return parts.length >= 4 ? parts.slice(3).join(":") : String(urn);
  }

  function debounce(fn, ms) {
    let timer = 0;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  const storage = {
    get() {
      try { return window.sessionStorage.getItem(REFRESH_KEY); } catch (_) { return null; }
    },
    set(value) {
      try { window.sessionStorage.setItem(REFRESH_KEY, value); } catch (_) { /* private mode: memory only */ }
    },
    clear() {
      try { window.sessionStorage.removeItem(REFRESH_KEY); } catch (_) { /* nothing stored */ }
    },
  };

  // ---------------------------------------------------------------------------------------------
  // Errors: every failure becomes an ApiError carrying a French message for the operator.
  // ---------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, slug, title, detail, retryAfter) {
      super(title || "Erreur");
      this.status = status;
      this.slug = slug;
      this.title = title;
      this.detail = detail;
      this.retryAfter = retryAfter;
    }
  }

  async function errorFromResponse(response) {
    let problem = null;
    const type = response.headers.get("content-type") || "";
    if (type.includes("json")) {
      try { problem = await response.json(); } catch (_) { problem = null; }
    }
    const slug = problem && typeof problem.type === "string" ? problem.type.split("/").pop() : null;
    return new ApiError(
      response.status,
      slug,
      problem && problem.title ? problem.title : `HTTP ${response.status}`,
      problem && typeof problem.detail === "string" ? problem.detail : null,
      response.headers.get("retry-after"),
    );
  }

  function networkError() {
    return new ApiError(0, "network", "Serveur injoignable", null, null);
  }

  /** French sentence for an error, plus the server's own detail (in English) when it adds something. */
  function describeError(error) {
    if (!(error instanceof ApiError)) {
      return { message: "Erreur inattendue dans la page : rechargez-la (F5).", detail: String(error && error.message || error) };
    }
    if (error.status === 0) {
      return { message: "Le serveur ne répond pas : vérifiez le réseau puis réessayez.", detail: null };
    }
    let message = PROBLEMS_FR[error.slug];
    if (!message) {
      message = error.status >= 500
        ? `Le serveur a rencontré une erreur (HTTP ${error.status}).`
        : `La requête a été refusée (HTTP ${error.status}${error.title ? ", " + error.title : ""}).`;
    }
    if (error.slug === "too-many-attempts" && error.retryAfter) {
      message = `Trop de tentatives de connexion échouées : réessayez dans ${error.retryAfter} s.`;
    }
    const detail = SELF_EXPLAINED.has(error.slug) ? null : error.detail;
    return { message, detail };
  }

  /** Fill a container with the message and, marked as English, the server's detail. */
  function renderError(container, error, prefix) {
    const { message, detail } = describeError(error);
    container.replaceChildren(
      prefix ? el("strong", null, prefix + " ") : "",
      message,
      detail ? el("span", { class: "error-detail", lang: "en" }, " (" + detail + ")") : "",
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Session: access token in memory, refresh token in sessionStorage (a reload keeps the session,
  // closing the tab ends it). Refresh tokens are single use, so one refresh runs at a time.
  // ---------------------------------------------------------------------------------------------

  const auth = { access: null, expiresAt: 0, timer: 0, refreshing: null, epoch: 0 };

  function setTokens(token) {
    auth.access = token.access_token;
    auth.expiresAt = Date.now() + token.expires_in * 1000;
    storage.set(token.refresh_token);
    clearTimeout(auth.timer);
    // Refresh a minute before expiry so requests never leave with a stale token.
    const delay = Math.max(10, token.expires_in - 60) * 1000;
    auth.timer = setTimeout(() => {
      refreshAccess().catch((error) => {
        if (error.status !== 0) sessionLost();
      });
    }, delay);
  }

  function clearTokens() {
    auth.access = null;
    auth.expiresAt = 0;
    clearTimeout(auth.timer);
    storage.clear();
  }

  async function tokenRequest(fields) {
    let response;
    try {
      response = await fetch("/auth/token", {
        method: "POST",
        body: new URLSearchParams(fields),
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
    } catch (_) {
      throw networkError();
    }
    if (!response.ok) throw await errorFromResponse(response);
    setTokens(await response.json());
  }

  function refreshAccess() {
    if (auth.refreshing) return auth.refreshing;
    const refreshToken = storage.get();
    if (!refreshToken) return Promise.reject(new ApiError(401, "not-authenticated", "Authentication required"));
    auth.refreshing = tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken })
      .catch((error) => {
        // A refused refresh token is spent or revoked: forget it. A network error keeps it for later.
        if (error.status !== 0) clearTokens();
        throw error;
      })
      .finally(() => {
        auth.refreshing = null;
      });
    return auth.refreshing;
  }

  /** GET (or other method) on the API with the bearer token; on a 401, refresh once and retry once. */
  async function api(path, options = {}) {
    const epoch = auth.epoch;
    if (auth.refreshing) await auth.refreshing.catch(() => undefined);
    if (auth.access && auth.expiresAt - Date.now() < 20000) {
      await refreshAccess().catch(() => undefined); // the 401 path below handles a failure
    }
    let sentWith = null;
    const send = async () => {
      sentWith = auth.access;
      try {
        return await fetch(path, {
          method: options.method || "GET",
          headers: { Accept: "application/json, application/geo+json", Authorization: `Bearer ${sentWith}` },
          signal: options.signal,
          cache: "no-store",
        });
      } catch (error) {
        if (error && error.name === "AbortError") throw error;
        throw networkError();
      }
    };
    let response = await send();
    if (response.status === 401 && epoch === auth.epoch) {
      try {
        // Requests that left together share one refresh; one that left before a refresh just retries.
        if (auth.access === sentWith) await refreshAccess();
        else if (auth.refreshing) await auth.refreshing;
      } catch (error) {
        if (error.status !== 0) sessionLost();
        throw error;
      }
      response = await send();
    }
    if (epoch !== auth.epoch) throw new DOMException("Session changed", "AbortError");
    if (!response.ok) {
      const error = await errorFromResponse(response);
      if (response.status === 401) sessionLost();
      throw error;
    }
    return response.status === 204 ? null : response.json();
  }

  // ---------------------------------------------------------------------------------------------
  // Page state
  // ---------------------------------------------------------------------------------------------

  const state = {
    me: null,
    communes: null, // FeatureCollection
    communeNames: new Map(), // INSEE code → name
    snapshot: null, // compact columns from /api/v1/assets/map, plus prebuilt features
    lastResult: null, // the last filter's features and counters
    selected: { type: new Set(), status: new Set(), commune: new Set() }, // indices into snapshot arrays
    assetsRendered: false,
    detailId: null,
    detailSeq: 0,
    lastFocus: null,
  };

  const ui = {};
  let map = null;
  let mapLoaded = false; // the style and its sources exist (isStyleLoaded() is false while tiles load)
  let mapReady = Promise.resolve(false);

  // ---------------------------------------------------------------------------------------------
  // Messages: status line (aria-live polite), banner (role=alert), loading indicator
  // ---------------------------------------------------------------------------------------------

  function announce(text) {
    ui.statusLine.textContent = text;
  }

  let bannerRetry = null;
  function showBanner(error, prefix, retry) {
    const text = $(".banner-text", ui.banner);
    if (typeof error === "string") text.textContent = error;
    else renderError(text, error, prefix);
    bannerRetry = retry || null;
    $(".banner-retry", ui.banner).hidden = !retry;
    ui.banner.hidden = false;
  }
  function hideBanner() {
    ui.banner.hidden = true;
    bannerRetry = null;
  }

  function setLoading(text) {
    ui.loading.hidden = !text;
    if (text) $(".loading-text", ui.loading).textContent = text;
  }

  // ---------------------------------------------------------------------------------------------
  // Login / logout
  // ---------------------------------------------------------------------------------------------

  function showLogin(info) {
    ui.shell.inert = true;
    ui.shell.setAttribute("aria-hidden", "true");
    ui.login.hidden = false;
    ui.loginError.hidden = true;
    ui.loginInfo.hidden = !info;
    ui.loginInfo.textContent = info || "";
    setLoading(null);
    ui.loginSubmit.disabled = false;
    ui.loginSubmit.textContent = "Se connecter";
    (ui.loginUser.value ? ui.loginPassword : ui.loginUser).focus();
  }

  function hideLogin() {
    ui.login.hidden = true;
    ui.shell.inert = false;
    ui.shell.removeAttribute("aria-hidden");
  }

  async function onLoginSubmit(event) {
    event.preventDefault();
    const username = ui.loginUser.value.trim();
    const password = ui.loginPassword.value;
    ui.loginError.hidden = true;
    ui.loginInfo.hidden = true;
    if (!username || !password) {
      ui.loginError.textContent = "Saisissez votre identifiant et votre mot de passe.";
      ui.loginError.hidden = false;
      (username ? ui.loginPassword : ui.loginUser).focus();
      return;
    }
    ui.loginSubmit.disabled = true;
    ui.loginSubmit.textContent = "Connexion…";
    try {
      await tokenRequest({ grant_type: "password", username, password });
    } catch (error) {
      renderError(ui.loginError, error);
      ui.loginError.hidden = false;
      ui.loginSubmit.disabled = false;
      ui.loginSubmit.textContent = "Se connecter";
      ui.loginPassword.select();
      ui.loginPassword.focus();
      return;
    }
    ui.loginPassword.value = "";
    hideLogin();
    startWorkspace();
  }

  /** The server refused our tokens: back to the login form, the work area emptied. */
  function sessionLost() {
    if (!ui.login) { // before the page is wired (early requests): boot shows the form
      auth.epoch += 1;
      clearTokens();
      return;
    }
    if (!ui.login.hidden) return;
    auth.epoch += 1;
    clearTokens();
    resetWorkspace();
    showLogin("Votre session a expiré : reconnectez-vous.");
  }

  async function logout() {
    const refreshToken = storage.get();
    auth.epoch += 1; // responses still in flight no longer touch the page
    clearTokens();
    if (refreshToken) {
      try {
        await fetch("/auth/revoke", { method: "POST", body: new URLSearchParams({ token: refreshToken }) });
      } catch (_) {
        // The token dies with its TTL anyway; the operator is logged out locally either way.
      }
    }
    resetWorkspace();
    showLogin("Vous êtes déconnecté.");
  }

  // ---------------------------------------------------------------------------------------------
  // Workspace: load communes, roads, the asset snapshot and the profile in parallel.
  // ---------------------------------------------------------------------------------------------

  /** The four requests of the work area, sent together: the server answers them side by side. */
  function requestWorkspace() {
    const requests = {
      epoch: auth.epoch,
      started: performance.now(),
      me: api("/api/v1/me"),
      communes: api("/api/v1/communes?format=geojson"),
      roads: api("/api/v1/roads"),
      assets: api("/api/v1/assets/map"),
    };
    // Handlers may be attached a little later (see `early`): meanwhile a failure is not "unhandled".
    for (const key of ["me", "communes", "roads", "assets"]) requests[key].catch(() => undefined);
    return requests;
  }

  function startWorkspace(requests = requestWorkspace()) {
    const epoch = requests.epoch;
    const current = () => epoch === auth.epoch;
    hideBanner();
    setLoading("Chargement des équipements…");
    announce("Chargement de la carte et des équipements…");
    const { me, communes, roads, assets } = requests;

    me.then((profile) => {
      if (current()) { state.me = profile; renderUser(); }
    }).catch((error) => {
      if (current() && error.name !== "AbortError") showBanner(error, "Profil indisponible :");
    });

    communes.then((collection) => {
      if (!current()) return;
      state.communes = collection;
      state.communeNames = new Map(collection.features.map((f) => [f.properties.code, f.properties.name]));
      renderUser();
      if (state.snapshot) renderFacets();
      mapReady.then((ok) => ok && current() && showCommunes(collection));
    }).catch((error) => {
      if (current() && error.name !== "AbortError") showBanner(error, "Communes indisponibles :");
    });

    // The first view frames the user's scope, once both the areas and the profile are known.
    Promise.allSettled([me, communes, mapReady]).then(() => {
      if (current()) fitToScope(false);
    });

    // Roads are context only: the map works without them, and they are handed to the map once the
    // assets are drawn (with two cores, tiling 11,000 lines would delay the clustering of the assets).
    roads.then((collection) => {
      if (current()) {
        Promise.all([mapReady, assetsDrawn]).then(([ok]) => ok && current() && map.getSource("roads").setData(collection));
      }
    }).catch((error) => {
      if (current() && error.name !== "AbortError") {
        announce("Voirie indisponible : la carte s'affiche sans les routes.");
        showBanner(error, "Voirie indisponible (la carte reste utilisable) :");
      }
    });

    loadAssets(assets, current, requests.started);
  }

  // Resolved once the first asset snapshot is on screen, or could not be loaded.
  let assetsDrawnResolve = null;
  let assetsDrawn = new Promise((resolve) => { assetsDrawnResolve = resolve; });

  function loadAssets(request, current, started) {
    request.then((snapshot) => {
      if (!current()) return;
      performance.mark("metropilot:assets-received");
      setLoading(null);
      prepareSnapshot(snapshot);
      renderFacets();
      applyFilters(true);
      const seconds = (performance.now() - started) / 1000;
      announce(`${nf.format(snapshot.id.length)} équipements chargés en ${nfDecimal.format(seconds)} s.`);
      openFromHash();
    }).catch((error) => {
      if (!current() || error.name === "AbortError") return;
      assetsDrawnResolve();
      setLoading(null);
      announce("Les équipements n'ont pas pu être chargés.");
      showBanner(error, "Équipements indisponibles :", () => {
        hideBanner();
        setLoading("Chargement des équipements…");
        const epoch = auth.epoch;
        loadAssets(api("/api/v1/assets/map"), () => epoch === auth.epoch, performance.now());
      });
    });
  }

  function resetWorkspace() {
    closeDetail(false);
    closeSearch();
    ui.searchInput.value = "";
    hideBanner();
    setLoading(null);
    state.me = null;
    state.snapshot = null;
    state.lastResult = null;
    for (const set of Object.values(state.selected)) set.clear();
    renderUser();
    renderFacets();
    renderCounters(null);
    announce("");
    if (map && mapLoaded) {
      for (const id of ["assets", "roads", "communes", "selected"]) map.getSource(id).setData(EMPTY);
    }
    clusterLabels.clear();
    for (const marker of communeMarkers.values()) marker.remove();
    communeMarkers.clear();
  }

  function renderUser() {
    const me = state.me;
    ui.userName.textContent = me ? (me.full_name || me.username) + (me.full_name ? ` (${me.username})` : "") : "—";
    ui.userRoles.textContent = me ? me.roles.map((r) => ROLE_LABELS[r] || r).join(", ") : "";
    let scope = "—";
    if (me) {
      scope = me.communes === null
        ? `Métropole${state.communes ? ` (${state.communes.features.length} communes)` : ""}`
        : me.communes.map((code) => state.communeNames.get(code) || code).join(", ");
    }
    ui.userScope.textContent = scope;
    ui.userScope.title = scope;
  }

  // ---------------------------------------------------------------------------------------------
  // Map
  // ---------------------------------------------------------------------------------------------

  const MAP_LOCALE = {
    "Map.Title": "Carte",
    "Marker.Title": "Repère",
    "NavigationControl.ZoomIn": "Zoomer",
    "NavigationControl.ZoomOut": "Dézoomer",
    "NavigationControl.ResetBearing": "Réorienter vers le nord",
    "AttributionControl.ToggleAttribution": "Afficher les sources",
    "ScaleControl.Meters": "m",
    "ScaleControl.Kilometers": "km",
  };

  function buildStyle() {
    // No tiles, glyphs or sprites exist: a background and GeoJSON sources only, and no text layers.
    return {
      version: 8,
      sources: {
        communes: { type: "geojson", data: EMPTY, promoteId: "code" },
        roads: { type: "geojson", data: EMPTY, tolerance: 0.6 },
        assets: {
          type: "geojson",
          data: EMPTY,
          cluster: true,
          clusterMaxZoom: CLUSTER_MAX_ZOOM,
          clusterRadius: 46,
          // Each feature carries a = 1 when it is in fault or offline: clusters sum it for their badge.
          clusterProperties: { alarm: ["+", ["get", "a"]] },
        },
        selected: { type: "geojson", data: EMPTY },
      },
      layers: [
        { id: "background", type: "background", paint: { "background-color": "#0b1118" } },
        {
          id: "communes-fill", type: "fill", source: "communes",
          paint: {
            "fill-color": "#35506d",
            "fill-opacity": ["case", ["boolean", ["feature-state", "off"], false], 0.02, 0.2],
          },
        },
        {
          id: "roads-residential", type: "line", source: "roads", minzoom: 11,
          filter: ["==", ["get", "class"], "residential"],
          layout: { "line-cap": "round", "line-join": "round" },
          paint: {
            "line-color": "#364759",
            "line-width": ["interpolate", ["exponential", 1.6], ["zoom"], 11, 0.4, 15, 2, 18, 9],
          },
        },
        {
          id: "roads-secondary", type: "line", source: "roads",
          filter: ["==", ["get", "class"], "secondary"],
          layout: { "line-cap": "round", "line-join": "round" },
          paint: {
            "line-color": "#46596e",
            "line-width": ["interpolate", ["exponential", 1.6], ["zoom"], 9, 0.5, 15, 3, 18, 12],
          },
        },
        {
          id: "roads-primary", type: "line", source: "roads",
          filter: ["==", ["get", "class"], "primary"],
          layout: { "line-cap": "round", "line-join": "round" },
          paint: {
            "line-color": "#51667d",
            "line-width": ["interpolate", ["exponential", 1.6], ["zoom"], 9, 0.9, 15, 4.5, 18, 16],
          },
        },
        {
          id: "communes-line", type: "line", source: "communes",
          paint: {
            "line-color": "#7f9bb8",
            "line-opacity": ["case", ["boolean", ["feature-state", "off"], false], 0.3, 0.9],
            "line-width": ["interpolate", ["linear"], ["zoom"], 9, 1, 14, 2],
            "line-dasharray": [3, 2],
          },
        },
        {
          id: "clusters", type: "circle", source: "assets", filter: ["has", "point_count"],
          paint: {
            "circle-color": "#17324f",
            "circle-opacity": 0.92,
            "circle-stroke-color": "#5aa9ff",
            "circle-stroke-width": 1.5,
            "circle-radius": ["step", ["get", "point_count"], 13, 50, 16, 500, 20, 2000, 25, 8000, 30],
          },
        },
        {
          id: "assets-points", type: "circle", source: "assets", filter: ["!", ["has", "point_count"]],
          paint: { "circle-color": "#9aa5b1", "circle-radius": 4 }, // replaced once the snapshot's indices are known
        },
        {
          id: "selected", type: "circle", source: "selected",
          paint: {
            "circle-radius": 14,
            "circle-color": "rgba(255, 209, 102, 0.12)",
            "circle-stroke-color": "#ffd166",
            "circle-stroke-width": 3,
          },
        },
      ],
    };
  }

  function createMap() {
    if (typeof window.maplibregl === "undefined") {
      throw new Error("La bibliothèque cartographique (MapLibre) n'a pas pu être chargée.");
    }
    const lib = window.maplibregl;
    const instance = new lib.Map({
      container: "map",
      style: buildStyle(),
      bounds: METRO_BOUNDS,
      fitBoundsOptions: { padding: 24 },
      minZoom: 8,
      maxZoom: 19,
      dragRotate: false,
      pitchWithRotate: false,
      touchPitch: false,
      renderWorldCopies: false,
      fadeDuration: 0,
      locale: MAP_LOCALE,
      attributionControl: { compact: true, customAttribution: "Contours des communes : approximation" },
    });
    instance.touchZoomRotate.disableRotation();
    instance.keyboard.disableRotation();
    instance.addControl(new lib.NavigationControl({ showCompass: false }), "top-right");
    instance.addControl(overviewControl(), "top-right");
    instance.addControl(new lib.ScaleControl({ unit: "metric" }), "bottom-right");
    return instance;
  }

  /** A map button that frames the user's whole scope again (the métropole, or their communes). */
  function overviewControl() {
    let container = null;
    return {
      onAdd() {
        const button = el("button", {
          type: "button", class: "overview-btn", title: "Vue d'ensemble du périmètre",
          "aria-label": "Revenir à la vue d'ensemble du périmètre", onclick: () => fitToScope(true),
        }, el("span", { "aria-hidden": "true" }, "⤢"));
        container = el("div", { class: "maplibregl-ctrl maplibregl-ctrl-group" }, button);
        return container;
      },
      onRemove() {
        if (container) container.remove();
      },
    };
  }

  function initMap() {
    try {
      map = createMap();
    } catch (error) {
      map = null;
      showBanner(`La carte ne peut pas s'afficher : ${error.message} Les compteurs, la recherche et les fiches restent disponibles.`);
      return;
    }
    mapReady = new Promise((resolve) => {
      map.once("load", () => {
        mapLoaded = true;
        resolve(true);
      });
      map.on("error", (event) => {
        const message = event && event.error && event.error.message || "";
        if (/webgl/i.test(message)) {
          showBanner("La carte ne peut pas s'afficher : WebGL est indisponible dans ce navigateur.");
          resolve(false);
        } else {
          console.warn("metropilot: map error", event && event.error); // eslint-disable-line no-console
        }
      });
    });

    map.on("click", "clusters", onClusterClick);
    map.on("click", "assets-points", (event) => {
      const feature = event.features && event.features[0];
      if (!feature || !state.snapshot) return;
      openDetail(state.snapshot.id[feature.properties.i], { fly: "reveal", trigger: ui.mapCanvasHost });
    });
    for (const layer of ["clusters", "assets-points"]) {
      map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
      map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
    }
    // HTML labels follow what is on screen: recomputed when the map settles.
    map.on("zoomstart", () => ui.mapEl.classList.add("is-zooming"));
    map.on("moveend", updateLabels);
    map.on("idle", updateLabels);
    map.on("resize", updateLabels);
  }

  async function onClusterClick(event) {
    const feature = event.features && event.features[0];
    if (!feature) return;
    try {
      const zoom = await map.getSource("assets").getClusterExpansionZoom(feature.properties.cluster_id);
      map.easeTo({ center: feature.geometry.coordinates, zoom: Math.min(zoom + 0.2, map.getMaxZoom()) });
    } catch (_) {
      // The cluster vanished (data replaced by a filter meanwhile): zoom in one level instead.
      map.easeTo({ center: feature.geometry.coordinates, zoom: map.getZoom() + 1 });
    }
  }

  /** Paint expressions need the snapshot's type and status indices, known only once it arrives. */
  function styleAssetLayer(snapshot) {
    const statusColor = ["match", ["get", "s"]];
    snapshot.statuses.forEach((key, index) => statusColor.push(index, STATUS_COLORS[key] || "#9aa5b1"));
    statusColor.push("#9aa5b1");
    const ringColor = ["match", ["get", "t"]];
    const ringWidth = ["match", ["get", "t"]];
    const lightIndex = snapshot.types.indexOf("streetlight");
    snapshot.types.forEach((key, index) => {
      ringColor.push(index, TYPE_RINGS[key] || "#0b1118");
      ringWidth.push(index, TYPE_RINGS[key] ? 2 : 0.6);
    });
    ringColor.push("#0b1118");
    ringWidth.push(0.6);
    const small = (z) => ["match", ["get", "t"], lightIndex, z[0], z[1]];
    map.setPaintProperty("assets-points", "circle-color", statusColor);
    map.setPaintProperty("assets-points", "circle-stroke-color", ringColor);
    map.setPaintProperty("assets-points", "circle-stroke-width", ringWidth);
    map.setPaintProperty("assets-points", "circle-radius",
      ["interpolate", ["linear"], ["zoom"], 10, small([2.5, 4]), 16, small([4, 6.5]), 19, small([7, 10])]);
    // Equipment above light points, alarms above everything.
    map.setLayoutProperty("assets-points", "circle-sort-key",
      ["+", ["match", ["get", "t"], lightIndex, 0, 1], ["*", 2, ["get", "a"]]]);
  }

  function showCommunes(collection) {
    map.getSource("communes").setData(collection);
    for (const marker of communeMarkers.values()) marker.remove();
    communeMarkers.clear();
    for (const feature of collection.features) {
      const { code, name, population } = feature.properties;
      const point = feature.properties.reference_point || centroid(feature.geometry);
      const element = el("div", { class: "commune-label", "aria-hidden": "true", role: "presentation" }, name);
      const marker = new window.maplibregl.Marker({ element, anchor: "center" }).setLngLat(point).addTo(map);
      marker._mp = { code, population: population || 0, width: 0 };
      communeMarkers.set(code, marker);
    }
    syncCommuneHighlight();
    updateLabels();
  }

  function centroid(geometry) {
    const ring = geometry.type === "Polygon" ? geometry.coordinates[0] : geometry.coordinates[0][0];
    let x = 0, y = 0;
    for (const [lon, lat] of ring) { x += lon; y += lat; }
    return [x / ring.length, y / ring.length];
  }

  function scopeBounds() {
    if (!state.communes) return null;
    const scope = state.me && state.me.communes ? new Set(state.me.communes) : null;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const feature of state.communes.features) {
      if (scope && !scope.has(feature.properties.code)) continue;
      const polygons = feature.geometry.type === "Polygon" ? [feature.geometry.coordinates] : feature.geometry.coordinates;
      for (const polygon of polygons) {
        for (const [x, y] of polygon[0]) {
          if (x < minX) minX = x; if (x > maxX) maxX = x;
          if (y < minY) minY = y; if (y > maxY) maxY = y;
        }
      }
    }
    return minX === Infinity ? null : [[minX, minY], [maxX, maxY]];
  }

  function fitToScope(animate) {
    if (!map) return;
    const bounds = scopeBounds();
    if (!bounds) return;
    // Keep the métropole clear of the legend (bottom left) and of an open detail panel (right).
    const legend = ui.legend.open ? ui.legend.getBoundingClientRect().width : 0;
    const detail = ui.detail.hidden ? 0 : ui.detail.getBoundingClientRect().width;
    const padding = { top: 32, bottom: 32, left: legend ? legend + 28 : 32, right: detail ? detail + 28 : 32 };
    try {
      map.fitBounds(bounds, { padding, animate: Boolean(animate), duration: animate ? 600 : 0 });
    } catch (_) {
      // A map without WebGL cannot move; the banner already says so.
    }
  }

  // --- HTML labels: cluster counts and commune names, only for what is on screen -----------------

  const communeMarkers = new Map(); // code → Marker
  const clusterLabels = {
    active: new Map(), // cluster_id → Marker
    pool: [], // detached markers, reused instead of rebuilt
    clear() {
      for (const marker of this.active.values()) { marker.remove(); this.pool.push(marker); }
      this.active.clear();
    },
  };

  function clusterRadius(count) {
    return count < 50 ? 13 : count < 500 ? 16 : count < 2000 ? 20 : count < 8000 ? 25 : 30;
  }

  function takeClusterMarker() {
    const reused = clusterLabels.pool.pop();
    if (reused) return reused;
    const element = el("div", { class: "cluster-label", "aria-hidden": "true", role: "presentation" },
      el("span", { class: "cluster-count" }), el("span", { class: "cluster-alarm" }));
    return new window.maplibregl.Marker({ element, anchor: "center" });
  }

  function updateLabels() {
    if (!map || !mapLoaded) return;
    const boxes = [];
    const seen = new Set();
    const rendered = state.snapshot ? map.queryRenderedFeatures({ layers: ["clusters"] }) : [];
    for (const feature of rendered) {
      const props = feature.properties;
      const id = props.cluster_id;
      if (seen.has(id)) continue; // a cluster straddling tiles is returned once per tile
      seen.add(id);
      // Cluster ids are reused after setData: always move the marker to the cluster it now labels.
      let marker = clusterLabels.active.get(id);
      if (marker) {
        marker.setLngLat(feature.geometry.coordinates);
      } else {
        marker = takeClusterMarker().setLngLat(feature.geometry.coordinates).addTo(map);
        clusterLabels.active.set(id, marker);
      }
      const element = marker.getElement();
      const radius = clusterRadius(props.point_count);
      element.style.width = element.style.height = `${radius * 2}px`;
      element.style.setProperty("--r", `${radius}px`);
      element.firstChild.textContent = nf.format(props.point_count);
      element.lastChild.textContent = props.alarm > 0 ? nf.format(props.alarm) : "";
      element.lastChild.hidden = !(props.alarm > 0);
      const p = map.project(feature.geometry.coordinates);
      const r = radius + 3;
      boxes.push([p.x - r, p.y - r, p.x + r, p.y + r]);
    }
    for (const [id, marker] of clusterLabels.active) {
      if (!seen.has(id)) {
        marker.remove();
        clusterLabels.pool.push(marker);
        clusterLabels.active.delete(id);
      }
    }
    ui.mapEl.classList.remove("is-zooming");
    placeCommuneLabels(boxes);
  }

  /** Greedy placement: most populous communes first; a name that would cover a cluster or another
   *  name tries just above or below its point, else stays hidden at this zoom. */
  function placeCommuneLabels(boxes) {
    if (!communeMarkers.size) return;
    const canvas = map.getCanvas();
    const width = canvas.clientWidth, height = canvas.clientHeight;
    const ordered = [...communeMarkers.values()].sort((a, b) => b._mp.population - a._mp.population);
    const overlaps = (box) => boxes.some((o) => box[0] < o[2] && box[2] > o[0] && box[1] < o[3] && box[3] > o[1]);
    for (const marker of ordered) {
      const element = marker.getElement();
      const p = map.project(marker.getLngLat());
      if (p.x < 0 || p.y < 0 || p.x > width || p.y > height) {
        element.classList.add("is-hidden");
        continue;
      }
      if (!marker._mp.width) marker._mp.width = element.offsetWidth || element.textContent.length * 7 + 12;
      const w = marker._mp.width / 2 + 2, h = 10;
      let placed = false;
      const candidates = [[0, 0], [0, -22], [0, 22], [-w - 10, 0], [w + 10, 0], [0, -40], [0, 40], [0, -58], [0, 58]];
      for (const [dx, dy] of candidates) {
        const box = [p.x + dx - w, p.y + dy - h, p.x + dx + w, p.y + dy + h];
        if (box[0] < 0 || box[2] > width || box[1] < 0 || box[3] > height || overlaps(box)) continue;
        marker.setOffset([dx, dy]);
        boxes.push(box);
        placed = true;
        break;
      }
      element.classList.toggle("is-hidden", !placed);
    }
  }

  function syncCommuneHighlight() {
    if (!map || !mapLoaded || !state.communes) return;
    const snap = state.snapshot;
    for (const feature of state.communes.features) {
      const code = feature.properties.code;
      let off = false;
      if (snap) {
        const index = snap.communeIndex.get(code);
        off = index === undefined || !state.selected.commune.has(index);
      }
      map.setFeatureState({ source: "communes", id: code }, { off });
      const marker = communeMarkers.get(code);
      if (marker) marker.getElement().classList.toggle("is-off", off);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Assets: compact columns → GeoJSON features (built once), filtered client-side.
  // ---------------------------------------------------------------------------------------------

  function prepareSnapshot(snapshot) {
    const n = snapshot.id.length;
    const alarmStatus = snapshot.statuses.map((key) => (ALARM_STATUSES.has(key) ? 1 : 0));
    const features = new Array(n);
    const { t, s, lon, lat } = snapshot;
    for (let i = 0; i < n; i += 1) {
      // Properties stay numeric and tiny: they are copied to the worker and into every tile.
      features[i] = {
        type: "Feature",
        geometry: { type: "Point", coordinates: [lon[i], lat[i]] },
        properties: { i, t: t[i], s: s[i], a: alarmStatus[s[i]] },
      };
    }
    snapshot.features = features;
    snapshot.communeIndex = new Map(snapshot.communes.map((code, index) => [code, index]));
    state.snapshot = snapshot;
    state.lastResult = null;
    state.selected.type = new Set(snapshot.types.map((_, i) => i));
    state.selected.status = new Set(snapshot.statuses.map((_, i) => i));
    state.selected.commune = new Set(snapshot.communes.map((_, i) => i));
    if (map) mapReady.then((ok) => ok && state.snapshot === snapshot && styleAssetLayer(snapshot));
  }

  /** One pass over the columns: the features to draw and the counters of what is drawn. */
  function computeFilter() {
    const snap = state.snapshot;
    const { t, s, c } = snap;
    const n = snap.id.length;
    const typeOn = Uint8Array.from(snap.types, (_, i) => (state.selected.type.has(i) ? 1 : 0));
    const statusOn = Uint8Array.from(snap.statuses, (_, i) => (state.selected.status.has(i) ? 1 : 0));
    const communeOn = Uint8Array.from(snap.communes, (_, i) => (state.selected.commune.has(i) ? 1 : 0));
    const byType = new Array(snap.types.length).fill(0);
    const byStatus = new Array(snap.statuses.length).fill(0);
    const byCommune = new Array(snap.communes.length).fill(0);
    // With no filter the prebuilt array is handed over as is: nothing to copy.
    const everything = typeOn.every(Boolean) && statusOn.every(Boolean) && communeOn.every(Boolean);
    const features = everything ? snap.features : [];
    let total = 0;
    for (let i = 0; i < n; i += 1) {
      if (typeOn[t[i]] && statusOn[s[i]] && communeOn[c[i]]) {
        total += 1;
        byType[t[i]] += 1;
        byStatus[s[i]] += 1;
        byCommune[c[i]] += 1;
        if (!everything) features.push(snap.features[i]);
      }
    }
    return { features, total, byType, byStatus, byCommune };
  }

  let filterFrame = 0;
  function applyFilters(immediate) {
    // Coalesce rapid clicks into one rebuild per frame; the first build does not wait for a frame
    // (a background tab gets none).
    cancelAnimationFrame(filterFrame);
    const run = () => {
      if (!state.snapshot) return;
      const snapshot = state.snapshot;
      const result = computeFilter();
      state.lastResult = result;
      renderCounters(result);
      if (immediate !== true) announceFilter(result.total); // an operator's change, not the first load
      syncCommuneHighlight();
      mapReady.then((ok) => {
        if (!ok || state.snapshot !== snapshot) return;
        map.getSource("assets").setData({ type: "FeatureCollection", features: result.features });
        if (!state.assetsRendered) {
          performance.mark("metropilot:assets-set");
          markWhenRendered();
        }
      });
    };
    if (immediate === true) run();
    else filterFrame = requestAnimationFrame(run);
  }

  /** performance.mark once the map has drawn the full snapshot (its first idle after setData). */
  function markWhenRendered() {
    const check = () => {
      if (state.assetsRendered) return;
      if (!map.isSourceLoaded("assets")) {
        map.once("idle", check);
        return;
      }
      state.assetsRendered = true;
      const mark = performance.mark("metropilot:assets-rendered");
      const ms = Math.round(mark && typeof mark.startTime === "number" ? mark.startTime : performance.now());
      window.metropilot = { assetsRenderedMs: ms };
      assetsDrawnResolve();
    };
    map.once("idle", check);
  }

  // ---------------------------------------------------------------------------------------------
  // Facets (filters + counters) in the sidebar, and the legend
  // ---------------------------------------------------------------------------------------------

  function facetKeys(facet) {
    const snap = state.snapshot;
    if (!snap) return [];
    if (facet === "type") return snap.types.map((key, index) => ({ key, index, label: TYPE_LABELS[key] || key }));
    if (facet === "status") {
      // /assets/map leaves retired assets out: a "Déposé" filter would always read 0.
      return snap.statuses.map((key, index) => ({ key, index, label: STATUS_LABELS[key] || key }))
        .filter((item) => item.key !== "retired");
    }
    return snap.communes
      .map((key, index) => ({ key, index, label: state.communeNames.get(key) || key }))
      .sort((a, b) => a.label.localeCompare(b.label, "fr"));
  }

  /** (Re)build the facet rows; run again when the commune names arrive after the assets, so the
   *  counters of the last filter are written back into the new rows. */
  function renderFacets() {
    for (const facet of ["status", "type", "commune"]) {
      const list = $(`[data-facet-list="${facet}"]`, ui.filters);
      const rows = facetKeys(facet).map((item) => facetRow(facet, item));
      list.replaceChildren(...rows);
    }
    if (state.snapshot && state.lastResult) renderCounters(state.lastResult);
  }

  function facetRow(facet, item) {
    const checked = state.selected[facet].has(item.index);
    const input = el("input", {
      type: "checkbox", name: facet, value: item.key, checked,
      "data-index": item.index,
    });
    let symbol = null;
    if (facet === "status") symbol = el("span", { class: "swatch", style: `--c:${STATUS_COLORS[item.key] || "#9aa5b1"}`, "aria-hidden": "true" });
    if (facet === "type") symbol = typeSymbol(item.key);
    const count = el("span", { class: "count", [`data-count-${facet}`]: item.key }, "—");
    const label = el("label", { class: facet === "status" ? "tile" : "row-label" },
      input, symbol, el("span", { class: "name" }, item.label), count);
    if (facet === "status") return el("div", { class: "tile-wrap", style: `--c:${STATUS_COLORS[item.key] || "#9aa5b1"}` }, label);
    const only = el("button", {
      type: "button", class: "only-btn", "data-only": item.index, "data-facet": facet,
      "aria-label": `Afficher uniquement : ${item.label}`,
    }, "seul");
    return el("li", { class: "row" }, label, only);
  }

  function typeSymbol(key) {
    const ring = TYPE_RINGS[key];
    return el("span", {
      class: ring ? "type-symbol" : "type-symbol is-light",
      style: ring ? `--ring:${ring}` : null,
      "aria-hidden": "true",
    });
  }

  function renderCounters(result) {
    const all = state.snapshot ? state.snapshot.id.length : null;
    ui.countTotal.textContent = result ? nf.format(result.total) : "—";
    ui.countAll.textContent = all === null ? "—" : nf.format(all);
    if (!result) return;
    const snap = state.snapshot;
    const write = (facet, keys, counts) => {
      keys.forEach((key, index) => {
        const node = ui.filters.querySelector(`[data-count-${facet}="${CSS.escape(key)}"]`);
        if (node) node.textContent = nf.format(counts[index]);
      });
    };
    write("type", snap.types, result.byType);
    write("status", snap.statuses, result.byStatus);
    write("commune", snap.communes, result.byCommune);
    for (const input of ui.filters.querySelectorAll("input[type=checkbox]")) {
      input.checked = state.selected[input.name].has(Number(input.dataset.index));
      input.closest(".row, .tile-wrap").classList.toggle("is-off", !input.checked);
    }
  }

  const announceFilter = debounce((total) => {
    if (state.snapshot) announce(`${nf.format(total)} équipement${total > 1 ? "s" : ""} affiché${total > 1 ? "s" : ""}.`);
  }, 600);

  function onFilterChange(event) {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "checkbox" || !state.snapshot) return;
    const set = state.selected[input.name];
    const index = Number(input.dataset.index);
    if (input.checked) set.add(index); else set.delete(index);
    applyFilters();
  }

  function onFilterClick(event) {
    const button = event.target.closest("button");
    if (!button || !state.snapshot) return;
    const facet = button.dataset.facet;
    if (button.dataset.select) {
      const size = facet === "type" ? state.snapshot.types.length
        : facet === "status" ? state.snapshot.statuses.length : state.snapshot.communes.length;
      state.selected[facet] = new Set(button.dataset.select === "all" ? Array.from({ length: size }, (_, i) => i) : []);
      applyFilters();
    } else if (button.dataset.only !== undefined) {
      state.selected[facet] = new Set([Number(button.dataset.only)]);
      applyFilters();
    }
  }

  function onFilterReset(event) {
    event.preventDefault();
    if (!state.snapshot) return;
    state.selected.type = new Set(state.snapshot.types.map((_, i) => i));
    state.selected.status = new Set(state.snapshot.statuses.map((_, i) => i));
    state.selected.commune = new Set(state.snapshot.communes.map((_, i) => i));
    applyFilters();
  }

  function renderLegend() {
    ui.legendStatus.replaceChildren(...Object.entries(STATUS_LABELS).filter(([key]) => key !== "retired").map(([key, label]) =>
      el("li", null, el("span", { class: "swatch", style: `--c:${STATUS_COLORS[key]}`, "aria-hidden": "true" }), label)));
    ui.legendType.replaceChildren(...Object.entries(TYPE_LABELS).map(([key, label]) =>
      el("li", null, typeSymbol(key), label)));
  }

  // ---------------------------------------------------------------------------------------------
  // Search (combobox): /api/v1/assets?q=…&limit=20
  // ---------------------------------------------------------------------------------------------

  const search = { controller: null, results: [], active: -1, query: "" };

  const runSearch = debounce(async () => {
    const query = ui.searchInput.value.trim();
    if (query.length < 2) {
      closeSearch();
      return;
    }
    if (search.controller) search.controller.abort();
    const controller = new AbortController();
    search.controller = controller;
    try {
      const collection = await api(`/api/v1/assets?q=${encodeURIComponent(query)}&limit=20`, { signal: controller.signal });
      if (controller.signal.aborted) return;
      search.query = query;
      renderSearchResults(collection.features || []);
    } catch (error) {
      if (error.name === "AbortError") return;
      search.results = [];
      const item = el("li", { class: "search-empty", role: "option", "aria-disabled": "true" });
      renderError(item, error, "Recherche impossible :");
      openSearchList([item]);
    }
  }, 220);

  function renderSearchResults(features) {
    search.results = features;
    search.active = -1;
    if (!features.length) {
      openSearchList([el("li", { class: "search-empty", role: "option", "aria-disabled": "true" },
        `Aucun équipement ne correspond à « ${search.query} ».`)]);
      announce("Aucun équipement trouvé.");
      return;
    }
    const items = features.map((feature, index) => {
      const p = feature.properties;
      return el("li", {
        id: `search-option-${index}`, class: "search-option", role: "option", "aria-selected": "false",
        "data-id": feature.id, "data-index": index,
      },
      el("span", { class: "swatch", style: `--c:${STATUS_COLORS[p.status] || "#9aa5b1"}`, "aria-hidden": "true" }),
      el("span", { class: "option-main" },
        el("span", { class: "option-name" }, p.name),
        el("span", { class: "option-meta" },
          `${TYPE_LABELS[p.type] || p.type} · ${state.communeNames.get(p.commune) || p.commune} · ${STATUS_LABELS[p.status] || p.status}`,
          p.address ? ` · ${p.address}` : "")));
    });
    openSearchList(items);
    const more = features.length >= 20 ? " (les 20 premiers ; précisez la recherche)" : "";
    announce(`${features.length} équipement${features.length > 1 ? "s" : ""} trouvé${features.length > 1 ? "s" : ""}${more}.`);
  }

  function openSearchList(items) {
    ui.searchResults.replaceChildren(...items);
    ui.searchResults.hidden = false;
    ui.searchInput.setAttribute("aria-expanded", "true");
    ui.searchInput.removeAttribute("aria-activedescendant");
  }

  function closeSearch() {
    if (search.controller) search.controller.abort();
    search.controller = null;
    ui.searchResults.hidden = true;
    ui.searchResults.replaceChildren();
    ui.searchInput.setAttribute("aria-expanded", "false");
    ui.searchInput.removeAttribute("aria-activedescendant");
    search.results = [];
    search.active = -1;
  }

  function setActiveOption(index) {
    const options = ui.searchResults.querySelectorAll(".search-option");
    if (!options.length) return;
    search.active = (index + options.length) % options.length;
    options.forEach((option, i) => option.setAttribute("aria-selected", i === search.active ? "true" : "false"));
    const active = options[search.active];
    ui.searchInput.setAttribute("aria-activedescendant", active.id);
    active.scrollIntoView({ block: "nearest" });
  }

  function chooseResult(index) {
    const feature = search.results[index];
    if (!feature) return;
    closeSearch();
    openDetail(feature.id, { fly: "always", feature, trigger: ui.searchInput });
  }

  function onSearchKeydown(event) {
    const open = !ui.searchResults.hidden;
    if (event.key === "ArrowDown" && open) {
      event.preventDefault();
      setActiveOption(search.active + 1);
    } else if (event.key === "ArrowUp" && open) {
      event.preventDefault();
      setActiveOption(search.active - 1);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (open && search.results.length) chooseResult(search.active >= 0 ? search.active : 0);
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      event.stopPropagation(); // Escape closes the list first, the detail panel on the next press
      closeSearch();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Detail panel
  // ---------------------------------------------------------------------------------------------

  async function openDetail(id, options = {}) {
    const seq = ++state.detailSeq;
    if (ui.detail.hidden) state.lastFocus = options.trigger || document.activeElement;
    state.detailId = id;
    ui.detail.hidden = false;
    ui.mapArea.classList.add("has-detail");
    ui.detailType.textContent = TYPE_LABELS[NGSI_TYPES[String(id).split(":")[2]]] || "Équipement";
    ui.detailTitle.textContent = localId(id);
    ui.detailStatus.replaceChildren();
    ui.detailBody.replaceChildren(el("p", { class: "muted" }, "Chargement de la fiche…"));
    ui.detailTitle.focus();

    const epoch = auth.epoch;
    const feature = options.feature ? Promise.resolve(options.feature) : api(`/api/v1/assets/${encodeURIComponent(id)}`);
    const history = api(`/api/v1/assets/${encodeURIComponent(id)}/history`);
    history.catch(() => undefined); // reported inside the panel
    let asset;
    try {
      asset = await feature;
    } catch (error) {
      if (seq !== state.detailSeq || epoch !== auth.epoch || error.name === "AbortError") return;
      ui.detailTitle.textContent = "Fiche indisponible";
      const message = el("p", { class: "form-error" });
      renderError(message, error);
      ui.detailBody.replaceChildren(message);
      return;
    }
    if (seq !== state.detailSeq) return;
    renderDetail(asset);
    highlight(asset, options.fly);
    ui.detailTitle.focus();
    announce(`Fiche ouverte : ${asset.properties.name}.`);

    const historySection = $("#detail-history", ui.detailBody);
    try {
      const entries = await history;
      if (seq === state.detailSeq) renderHistory(historySection, entries);
    } catch (error) {
      if (seq !== state.detailSeq || error.name === "AbortError") return;
      const message = el("p", { class: "form-error" });
      renderError(message, error, "Historique indisponible :");
      historySection.replaceChildren(message);
    }
  }

  function closeDetail(restoreFocus = true) {
    if (ui.detail.hidden) return;
    state.detailSeq += 1;
    state.detailId = null;
    ui.detail.hidden = true;
    ui.mapArea.classList.remove("has-detail");
    if (map && mapLoaded) map.getSource("selected").setData(EMPTY);
    const back = state.lastFocus;
    state.lastFocus = null;
    if (restoreFocus) {
      if (back && document.contains(back) && typeof back.focus === "function") back.focus();
      else ui.searchInput.focus();
    }
  }

  function statusBadge(status) {
    return el("span", {
      class: "badge", "data-status": status,
      style: `--c:${STATUS_COLORS[status] || "#9aa5b1"};--fg:${STATUS_TEXT_ON[status] || "#0b1118"}`,
    }, STATUS_LABELS[status] || status);
  }

  function dl(rows) {
    const list = el("dl", { class: "props" });
    for (const [label, value] of rows) {
      if (value === undefined) continue;
      list.append(el("dt", null, label), el("dd", null, value === null || value === "" ? "—" : value));
    }
    return list;
  }

  function formatAttribute(key, value) {
    const spec = ATTRIBUTES[key] || {};
    const translate = (v) => (spec.values && Object.prototype.hasOwnProperty.call(spec.values, v) ? spec.values[v] : String(v));
    if (value === null || value === undefined) return "—";
    if (typeof value === "boolean") return value ? "Oui" : "Non";
    if (typeof value === "number") return nfDecimal.format(value) + (spec.unit ? (spec.unit === "°" ? "°" : "\u00a0" + spec.unit) : "");
    if (Array.isArray(value)) return value.map(translate).join(", ");
    if (spec.kind === "date") return formatDate(value);
    if (typeof value === "object") return JSON.stringify(value);
    return translate(value);
  }

  function relationLink(urn) {
    const typeKey = NGSI_TYPES[String(urn).split(":")[2]];
    const link = el("a", {
      href: `#equipement=${encodeURIComponent(urn)}`, class: "relation-link", "data-asset-id": urn,
    }, `${TYPE_LABELS[typeKey] || "Équipement"} ${localId(urn)}`);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openDetail(urn, { fly: "always" });
    });
    // Show the related asset's name once read (it may be outside the user's scope: keep the id then).
    api(`/api/v1/assets/${encodeURIComponent(urn)}`).then((related) => {
      link.textContent = `${related.properties.name} · ${localId(urn)}`;
      link.append(" ", statusBadge(related.properties.status));
    }).catch(() => undefined);
    return link;
  }

  // The light points a cabinet feeds (GET /api/v1/assets?parent=…), each opening its own detail.
  function fedLights(cabinetId) {
    const box = el("div", { class: "fed-lights" }, el("p", { class: "muted" }, "Chargement…"));
    api(`/api/v1/assets?parent=${encodeURIComponent(cabinetId)}&limit=500`).then((collection) => {
      const features = collection.features || [];
      if (!features.length) {
        box.replaceChildren(el("p", { class: "muted" }, "Aucun point lumineux rattaché."));
        return;
      }
      const faulty = features.filter((f) => f.properties.status !== "active").length;
      const items = features.map((f) => {
        const link = el("a", { href: `#equipement=${encodeURIComponent(f.id)}`, "data-asset-id": f.id }, f.properties.name);
        link.addEventListener("click", (event) => {
          event.preventDefault();
          openDetail(f.id, { fly: "always", feature: f });
        });
        return el("li", null, link, " ", statusBadge(f.properties.status));
      });
      box.replaceChildren(
        el("p", null, `${features.length} point(s) lumineux`, faulty ? `, dont ${faulty} hors service normal` : ""),
        el("ul", { class: "fed-list" }, items));
    }).catch((error) => {
      const message = el("p", { class: "form-error" });
      renderError(message, error, "Liste indisponible :");
      box.replaceChildren(message);
    });
    return box;
  }

  function renderDetail(asset) {
    const p = asset.properties;
    const [lon, lat] = asset.geometry.coordinates;
    ui.detailType.textContent = TYPE_LABELS[p.type] || p.type;
    ui.detailTitle.textContent = p.name;
    ui.detailStatus.replaceChildren(statusBadge(p.status), el("code", { class: "asset-id", title: asset.id }, asset.id));

    const attributes = Object.entries(p.attributes || {});
    const relations = attributes.filter(([, v]) => typeof v === "string" && v.startsWith("urn:ngsi-ld:"));
    const plain = attributes.filter(([, v]) => !(typeof v === "string" && v.startsWith("urn:ngsi-ld:")));

    const sections = [
      section("Localisation", dl([
        ["Commune", state.communeNames.get(p.commune) || p.commune],
        ["Adresse", p.address],
        ["Coordonnées", `${nfCoord.format(lat)} N, ${nfCoord.format(lon)} E`],
      ])),
    ];
    if (relations.length) {
      sections.push(section("Rattachement", dl(relations.map(([key, urn]) => [ATTRIBUTES[key] ? ATTRIBUTES[key].label : key, relationLink(urn)]))));
    }
    sections.push(section("Caractéristiques", plain.length
      ? dl(plain.map(([key, value]) => [ATTRIBUTES[key] ? ATTRIBUTES[key].label : key, formatAttribute(key, value)]))
      : el("p", { class: "muted" }, "Aucune caractéristique renseignée.")));
    if (p.type === "lighting_cabinet") sections.push(section("Points lumineux alimentés", fedLights(asset.id)));
    sections.push(section("Installation", dl([
      ["Date de pose", p.installed_on ? formatDate(p.installed_on) : null],
      ["Fabricant", p.manufacturer],
      ["Modèle", p.model],
      ["N° de série", p.serial_number],
    ])));
    sections.push(section("Suivi (heure de Paris)", dl([
      ["Version", p.version === undefined ? null : String(p.version)],
      ["Créé le", formatInstant(p.created_at)],
      ["Dernière mise à jour", formatInstant(p.updated_at)],
      ["Déposé le", p.retired_at ? formatInstant(p.retired_at) : undefined],
    ])));
    const history = el("div", { id: "detail-history" }, el("p", { class: "muted" }, "Chargement de l'historique…"));
    sections.push(section("Historique", history));
    ui.detailBody.replaceChildren(...sections);
    ui.detailBody.scrollTop = 0;
  }

  function section(title, content) {
    return el("section", { class: "detail-section" }, el("h3", null, title), content);
  }

  function actorLabel(actor) {
    if (!actor) return "—";
    if (actor.startsWith("system:")) {
      const what = actor.slice(7);
      return `Système (${what === "seed" ? "simulation" : what === "cli" ? "ligne de commande" : what})`;
    }
    return actor;
  }

  function changedFields(before, after) {
    if (!before || !after || !before.properties || !after.properties) return [];
    const changes = [];
    const b = before.properties, a = after.properties;
    for (const key of Object.keys(FIELD_LABELS)) {
      if (key === "geometry") {
        if (JSON.stringify(before.geometry) !== JSON.stringify(after.geometry)) changes.push("position");
      } else if (key === "status" && b.status !== a.status) {
        changes.push(`état : ${STATUS_LABELS[b.status] || b.status} → ${STATUS_LABELS[a.status] || a.status}`);
      } else if (JSON.stringify(b[key]) !== JSON.stringify(a[key])) {
        changes.push(FIELD_LABELS[key]);
      }
    }
    const keys = new Set([...Object.keys(b.attributes || {}), ...Object.keys(a.attributes || {})]);
    for (const key of keys) {
      if (JSON.stringify((b.attributes || {})[key]) !== JSON.stringify((a.attributes || {})[key])) {
        changes.push((ATTRIBUTES[key] ? ATTRIBUTES[key].label : key).toLowerCase());
      }
    }
    return changes;
  }

  function renderHistory(container, entries) {
    if (!entries || !entries.length) {
      container.replaceChildren(el("p", { class: "muted" }, "Aucune modification enregistrée."));
      return;
    }
    const items = [...entries].reverse().map((entry) => {
      const changes = changedFields(entry.before, entry.after);
      let summary = null;
      if (entry.action === "asset.imported" && entry.after && entry.after.count) {
        summary = `Import groupé de ${nf.format(entry.after.count)} équipements`;
      }
      return el("li", { class: "history-entry" },
        el("div", { class: "history-head" },
          el("span", { class: "history-action" }, ACTION_LABELS[entry.action] || entry.action),
          el("time", { datetime: entry.at }, formatInstant(entry.at))),
        el("div", { class: "history-actor" }, "Par ", actorLabel(entry.actor)),
        summary ? el("div", { class: "history-note" }, summary) : null,
        changes.length ? el("div", { class: "history-note" }, "Modifié : ", changes.join(", ")) : null,
        entry.reason ? el("div", { class: "history-reason" }, "Motif : ", el("q", null, entry.reason)) : null);
    });
    container.replaceChildren(el("ol", { class: "history" }, items));
  }

  /** Mark the asset on the map and bring it into view (always for search; only if hidden for clicks). */
  function highlight(asset, fly) {
    if (!map) return;
    mapReady.then((ok) => {
      if (!ok || state.detailId !== asset.id) return;
      map.getSource("selected").setData({ type: "FeatureCollection", features: [{ type: "Feature", geometry: asset.geometry, properties: {} }] });
      const panel = ui.detail.getBoundingClientRect().width || 0;
      const padding = { top: 40, bottom: 40, left: 40, right: panel + 40 };
      if (fly === "always") {
        // Zoom 16.5: past the clusters, with a few streets around the asset for context.
        map.flyTo({ center: asset.geometry.coordinates, zoom: Math.max(map.getZoom(), 16.5), padding, duration: 1200 });
      } else if (fly === "reveal") {
        const point = map.project(asset.geometry.coordinates);
        const width = map.getCanvas().clientWidth;
        if (point.x > width - panel - 20) map.easeTo({ center: asset.geometry.coordinates, padding, duration: 500 });
      }
    });
  }

  function openFromHash() {
    const match = /^#equipement=(.+)$/.exec(window.location.hash);
    if (match) openDetail(decodeURIComponent(match[1]), { fly: "always" });
  }

  // ---------------------------------------------------------------------------------------------
  // Boot
  // ---------------------------------------------------------------------------------------------

  function bindUi() {
    Object.assign(ui, {
      shell: $("#shell"),
      login: $("#login"),
      loginForm: $("#login-form"),
      loginUser: $("#login-username"),
      loginPassword: $("#login-password"),
      loginError: $("#login-error"),
      loginInfo: $("#login-info"),
      loginSubmit: $("#login-submit"),
      logout: $("#logout"),
      userName: $("#user-name"),
      userRoles: $("#user-roles"),
      userScope: $("#user-scope"),
      searchInput: $("#search-input"),
      searchResults: $("#search-results"),
      filters: $("#filters"),
      countTotal: $("#count-total"),
      countAll: $("#count-all"),
      statusLine: $("#status-line"),
      mapArea: $(".map-area"),
      mapEl: $("#map"),
      banner: $("#banner"),
      loading: $("#loading"),
      legendStatus: $("#legend-status"),
      legendType: $("#legend-type"),
      legend: $("#legend"),
      detail: $("#detail"),
      detailType: $("#detail-type"),
      detailTitle: $("#detail-title"),
      detailStatus: $("#detail-status"),
      detailBody: $("#detail-body"),
      detailClose: $("#detail-close"),
    });
    ui.mapCanvasHost = ui.mapEl;

    ui.loginForm.addEventListener("submit", onLoginSubmit);
    ui.logout.addEventListener("click", logout);
    ui.filters.addEventListener("change", onFilterChange);
    ui.filters.addEventListener("click", onFilterClick);
    ui.filters.addEventListener("reset", onFilterReset);
    ui.searchInput.addEventListener("input", runSearch);
    ui.searchInput.addEventListener("keydown", onSearchKeydown);
    ui.searchInput.addEventListener("blur", () => setTimeout(() => {
      if (!ui.searchResults.contains(document.activeElement)) closeSearch();
    }, 150));
    ui.searchResults.addEventListener("mousedown", (event) => event.preventDefault()); // keep focus in the input
    ui.searchResults.addEventListener("click", (event) => {
      const option = event.target.closest(".search-option");
      if (option) chooseResult(Number(option.dataset.index));
    });
    ui.detailClose.addEventListener("click", () => closeDetail());
    $(".banner-close", ui.banner).addEventListener("click", hideBanner);
    $(".banner-retry", ui.banner).addEventListener("click", () => bannerRetry && bannerRetry());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !ui.detail.hidden && ui.login.hidden) {
        event.preventDefault();
        closeDetail();
      }
    });
    window.addEventListener("hashchange", () => state.snapshot && openFromHash());
  }

  // A returning operator (refresh token kept by this tab) goes straight to the map: the session is
  // refreshed and the data requested as soon as this script runs, while the browser still parses
  // MapLibre (1 MB) and before the map exists. The page is wired to the answers in boot().
  const early = (() => {
    if (!storage.get()) return null;
    const workspace = refreshAccess().then(() => requestWorkspace());
    workspace.catch(() => undefined);
    return workspace;
  })();

  async function boot() {
    bindUi();
    renderLegend();
    if (!early) {
      initMap(); // built while the operator types their password
      showLogin();
      return;
    }
    setLoading("Reprise de la session…");
    let requests = null;
    try {
      requests = await early;
      if (requests.epoch !== auth.epoch) throw new ApiError(401, "not-authenticated", "Authentication required");
    } catch (error) {
      initMap();
      setLoading(null);
      showLogin(error.status === 0 ? describeError(error).message : "Votre session a expiré : reconnectez-vous.");
      return;
    }
    // Creating the map is a long task (WebGL set-up): only now that the data requests have left,
    // so that it overlaps the server's work instead of delaying the requests.
    initMap();
    hideLogin();
    startWorkspace(requests);
  }

  // This script is deferred and placed before MapLibre's: DOMContentLoaded comes once both have run.
  if (document.readyState === "complete") boot();
  else document.addEventListener("DOMContentLoaded", boot, { once: true });
})();
