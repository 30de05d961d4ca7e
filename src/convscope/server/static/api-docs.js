// Starts Swagger UI on /api/docs (kept out of the page so the Content-Security-Policy needs no inline script).
window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
