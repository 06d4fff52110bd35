# songd's page (/) and Swagger UI (/docs): the files listed in web/assets.txt are embedded into
# songd_lib at build time (web/embed.cmake), so one binary is the whole product. swagger-ui-dist
# comes from npm (web/package-lock.json), installed here once when it is missing.
set(SONGD_WEB_DIR ${CMAKE_SOURCE_DIR}/web)
if(NOT EXISTS ${SONGD_WEB_DIR}/node_modules/swagger-ui-dist/swagger-ui-bundle.js)
  find_program(SONGD_NPM npm)
  if(NOT SONGD_NPM)
    message(FATAL_ERROR "npm is needed once to install swagger-ui-dist for /docs: "
                        "apt-get install npm (or run scripts/install-deps.sh)")
  endif()
  message(STATUS "Installing web/node_modules (npm ci --prefix web)")
  execute_process(COMMAND ${SONGD_NPM} ci --prefix ${SONGD_WEB_DIR} --no-audit --no-fund
                          --loglevel=error
                  RESULT_VARIABLE songd_npm_result)
  if(NOT songd_npm_result EQUAL 0)
    message(FATAL_ERROR "npm ci --prefix web failed (${songd_npm_result}): /docs needs "
                        "swagger-ui-dist from the npm registry")
  endif()
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${SONGD_WEB_DIR}/assets.txt)
file(STRINGS ${SONGD_WEB_DIR}/assets.txt songd_web_lines REGEX "^[^#]")
set(songd_web_inputs ${SONGD_WEB_DIR}/assets.txt ${SONGD_WEB_DIR}/embed.cmake)
foreach(line IN LISTS songd_web_lines)
  if(line MATCHES "^[^ ]+ +([^ ]+) ")
    list(APPEND songd_web_inputs ${SONGD_WEB_DIR}/${CMAKE_MATCH_1})
  endif()
endforeach()
set(SONGD_WEB_SOURCE ${CMAKE_BINARY_DIR}/generated/web_assets.cpp)
add_custom_command(
  OUTPUT ${SONGD_WEB_SOURCE}
  COMMAND ${CMAKE_COMMAND} -DWEB_DIR=${SONGD_WEB_DIR} -DMANIFEST=${SONGD_WEB_DIR}/assets.txt
          -DOUT=${SONGD_WEB_SOURCE} -P ${SONGD_WEB_DIR}/embed.cmake
  DEPENDS ${songd_web_inputs}
  COMMENT "Embedding web/ into songd")
target_sources(songd_lib PRIVATE ${SONGD_WEB_SOURCE})
