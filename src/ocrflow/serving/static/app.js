// ocrflow web demo: send the chosen file to POST /ocr and show the pictures, texts and scores.
// Plain JavaScript, no build step. Text from the server is only ever set with textContent.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const drop = $("drop");
  const input = $("file");
  const status = $("status");
  const results = $("results");
  const copyButton = $("copy");
  const downloadButton = $("download");
  const maxLongSide = $("max-long-side");
  let last = null; // {name, response}
  let busy = false;

  function setStatus(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }

  function readBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => {
        const url = String(reader.result);
        resolve(url.slice(url.indexOf(",") + 1));
      };
      reader.onerror = () => reject(reader.error || new Error("could not read the file"));
      reader.readAsDataURL(file);
    });
  }

  function isPdf(file) {
    return file.type === "application/pdf" || /\.pdf$/i.test(file.name || "");
  }

  async function run(file) {
    if (!file || busy) return;
    busy = true;
    copyButton.disabled = downloadButton.disabled = true;
    results.replaceChildren();
    setStatus(`Reading ${file.name || "the image"}…`, "busy");
    const started = performance.now();
    try {
      const payload = { file: await readBase64(file), fileType: isPdf(file) ? 0 : 1 };
      const side = parseInt(maxLongSide.value, 10);
      if (side > 0) payload.inferenceParams = { maxLongSide: side };
      setStatus(`Recognising ${file.name || "the image"}…`, "busy");
      const response = await fetch("ocr", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
      let data = null;
      try {
        data = await response.json();
      } catch (e) {
        data = { errorMsg: response.statusText || "the server's answer is not JSON" };
      }
      if (!response.ok || !data || data.errorCode !== 0) {
        const retry = response.headers.get("Retry-After");
        const extra = retry ? ` Retry in ${retry} s.` : "";
        const id = data && data.logId ? ` (logId ${data.logId})` : "";
        setStatus(`Error ${response.status}: ${(data && data.errorMsg) || "request failed"}${id}.${extra}`, "error");
        return;
      }
      last = { name: (file.name || "image").replace(/\.[^.]*$/, "") || "result", response: data };
      render(data.result);
      const lines = data.result.ocrResults.reduce((n, r) => n + r.texts.length, 0);
      const info = data.result.dataInfo;
      const size = info.type === "pdf" ? `${info.numPages} page(s)` : `${info.width}×${info.height}`;
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      setStatus(`${lines} text line(s) · ${size} · ${seconds} s`, "done");
      copyButton.disabled = downloadButton.disabled = false;
    } catch (e) {
      setStatus(`Error: ${e && e.message ? e.message : e}`, "error");
    } finally {
      busy = false;
    }
  }

  function render(result) {
    const pdf = result.dataInfo.type === "pdf";
    result.ocrResults.forEach((page, index) => {
      const section = document.createElement("article");
      section.className = "page";
      const title = document.createElement("h2");
      title.textContent = pdf ? `Page ${index + 1}` : "Result";
      const img = document.createElement("img");
      img.className = "result-image";
      img.alt = `OCR result picture${pdf ? ` of page ${index + 1}` : ""}`;
      img.src = `data:image/jpeg;base64,${page.image}`;
      const list = document.createElement("ol");
      list.className = "texts";
      for (const item of page.texts) {
        const li = document.createElement("li");
        const text = document.createElement("span");
        text.className = "text";
        text.textContent = item.text;
        const score = document.createElement("span");
        score.className = item.score < 0.5 ? "score low" : "score";
        score.textContent = Number(item.score).toFixed(3);
        li.append(score, text);
        list.append(li);
      }
      if (!page.texts.length) {
        const none = document.createElement("p");
        none.className = "empty";
        none.textContent = "No text found.";
        list.replaceWith(none);
        section.append(title, img, none);
      } else {
        section.append(title, img, list);
      }
      results.append(section);
    });
  }

  function allText() {
    if (!last) return "";
    return last.response.result.ocrResults.map((p) => p.texts.map((t) => t.text).join("\n")).join("\n\n");
  }

  async function copyAll() {
    const text = allText();
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    setStatus(`Copied ${text ? text.split("\n").filter(Boolean).length : 0} line(s) to the clipboard.`, "done");
  }

  function downloadJson() {
    if (!last) return;
    const blob = new Blob([JSON.stringify(last.response, null, 2)], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${last.name}.json`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  input.addEventListener("change", () => {
    const file = input.files[0];
    input.value = ""; // choosing the same file again fires "change" again
    run(file);
  });
  copyButton.addEventListener("click", copyAll);
  downloadButton.addEventListener("click", downloadJson);
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) run(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const files = e.clipboardData ? e.clipboardData.files : null;
    if (files && files.length) run(files[0]);
  });
})();
