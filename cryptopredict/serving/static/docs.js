// Swagger UI's initialiser, as a file rather than an inline script so a strict CSP holds.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // never ask an outside validator about our document
    presets: [SwaggerUIBundle.presets.apis],
  });
});
