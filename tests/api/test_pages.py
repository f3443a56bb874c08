"""The map pages in headless Chromium against a live server."""

import re
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gridcore import app as gapp
from tests.api.conftest import js_errors


def _wait(driver, cond, timeout=30):
    return WebDriverWait(driver, timeout).until(cond)


def test_supervisor_map_draws_the_grid_and_click_shows_the_cell(live_server, browser, city):
    from gridcore.grid import point_to_cell

    browser.get(live_server.url + "/")
    _wait(browser, lambda d: int(d.find_element(By.TAG_NAME, "body")
                                 .get_attribute("data-cells-drawn") or 0) > 100)
    _wait(browser, lambda d: int(d.find_element(By.TAG_NAME, "body")
                                 .get_attribute("data-streets-drawn") or 0) == 58)
    paths = browser.find_elements(By.CSS_SELECTOR, ".leaflet-overlay-pane path")
    assert len(paths) > 100
    # click the middle of the map: the panel shows the cell under that point
    map_el = browser.find_element(By.ID, "map")
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element_with_offset(map_el, 37, 23).click().perform()
    _wait(browser, lambda d: re.fullmatch(r"\d{15}", d.find_element(By.ID, "cell-code").text))
    shown = browser.find_element(By.ID, "cell-code").text
    marker = browser.execute_script(
        "var m = document.querySelector('.leaflet-interactive[stroke=\"#c00\"]');"
        "return m !== null;")
    assert marker
    info = browser.find_element(By.ID, "cell-info").text
    assert "社区" in info and "街道" in info
    import json

    lon, lat, crs = json.loads(browser.find_element(By.TAG_NAME, "body")
                               .get_attribute("data-picked"))
    assert crs == "wgs84"
    expected = city.cells.code.iloc[point_to_cell(city.cells, [lon], [lat])[0]]
    assert shown == expected
    time.sleep(0.5)
    assert js_errors(browser) == []


def test_chief_map_shows_only_own_cells_components_and_cases(live_server, browser, store_copy):
    import httpx

    token = gapp.issue_token(store_copy, role="chief", name="刘强", subject="c002")
    supervisor = gapp.issue_token(store_copy, role="supervisor", name="王")
    view = httpx.get(live_server.url + "/v1/chiefs/me/view",
                     headers={"Authorization": f"Bearer {token}"}).json()
    assert view["cells"] and view["components"]
    # a case in the chief's first cell, so the map has one to colour
    cell = httpx.get(live_server.url + f"/v1/cells/{view['cells'][0]}",
                     headers={"Authorization": f"Bearer {supervisor}"}).json()
    import shapely

    p = shapely.geometry.shape(cell["geometry"]).representative_point()
    r = httpx.post(live_server.url + "/v1/cases",
                   headers={"Authorization": f"Bearer {supervisor}"},
                   json={"lon": p.x, "lat": p.y, "crs": "wgs84", "event_class": "0506",
                         "description": "共享单车堆放"})
    assert r.status_code == 201, r.text

    browser.get(live_server.url + "/chief")
    browser.execute_script(f"localStorage.setItem('gridcore-token', '{token}');")
    browser.get(live_server.url + "/chief")
    body = _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body")
                 if d.find_element(By.TAG_NAME, "body").get_attribute("data-cells-drawn")
                 else False)
    assert int(body.get_attribute("data-cells-drawn")) == len(view["cells"])
    assert int(body.get_attribute("data-components-drawn")) == len(view["components"])
    assert int(body.get_attribute("data-cases-drawn")) == 1
    assert browser.find_element(By.ID, "chief-name").text == view["chief"]["name"]
    assert browser.find_elements(By.CSS_SELECTOR, "path.case-marker")
    assert js_errors(browser) == []
    # another chief's grids stay closed to this token
    other = httpx.get(live_server.url + "/v1/chiefs/c001/view",
                      headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/problem+json"
